"""A full data disk: a PUT (API or admin) is refused cleanly and changes nothing; a charge
is recorded and answered 200 while its mirror line waits for ``ledger repair``.

The data folder is a real 1 MiB tmpfs filled to the last block when the tests may mount
one (root, as in CI); otherwise the write calls fail with ENOSPC (``data_disk.kind``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from budgets.ledger import mirror
from budgets.models import Charge
from personas import paths
from personas.models import BudgetChange, Persona
from tests.api.test_budget_errors import URL, error_of
from tests.conftest import DataDisk

pytestmark = pytest.mark.django_db

CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.25, "request_id": "req-1"}


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(data_disk: DataDisk, make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 1.0  # keep this comment\n")


def persona_folder_listing() -> list[str]:
    return sorted(p.name for p in paths.personas_dir("hermes").iterdir())


def ledger(action: str) -> str:
    out = io.StringIO()
    call_command("ledger", action, stdout=out)
    return out.getvalue()


def test_a_put_on_a_full_disk_is_503_write_failed_and_changes_nothing(
    client: APIClient, coder: Persona, data_disk: DataDisk
) -> None:
    file = paths.persona_file("hermes", "coder")
    before = file.read_bytes()
    listing = persona_folder_listing()
    data_disk.fill()

    response = client.put(URL, {"daily_usd": 2.0, "monthly_usd": 9.0}, format="json")

    error = error_of(response, 503, "persona.write_failed")
    assert "agents/hermes/personas/coder.toml" in error["message"]
    assert "no space left on device" in error["message"]
    assert error["details"] == {"file": "agents/hermes/personas/coder.toml"}
    assert file.read_bytes() == before
    assert persona_folder_listing() == listing  # no temp file left behind
    assert client.get(URL).json()["budget"] == {"daily_usd": 1.0, "hard_cap": True}
    assert not BudgetChange.objects.exists()

    data_disk.free()
    retried = client.put(URL, {"daily_usd": 2.0, "monthly_usd": 9.0}, format="json")

    assert retried.status_code == 200, retried.content
    assert retried.json()["budget"] == {"daily_usd": 2.0, "monthly_usd": 9.0, "hard_cap": True}
    assert "# keep this comment" in file.read_text()
    assert BudgetChange.objects.count() == 1


def test_the_admin_form_on_a_full_disk_says_why_and_changes_nothing(
    admin_client: Client, coder: Persona, data_disk: DataDisk
) -> None:
    from tests.admin.test_persona_budget import form_data, url

    file = paths.persona_file("hermes", "coder")
    before = file.read_bytes()
    data = form_data(coder, admin_client, daily_usd="7")
    data_disk.fill()

    response = admin_client.post(url(coder), data, follow=True)

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any(
        "could not write agents/hermes/personas/coder.toml: no space left on device" in m
        for m in shown
    ), shown
    assert not any(m.startswith("Saved") for m in shown), shown
    assert file.read_bytes() == before
    assert not BudgetChange.objects.exists()


def test_a_charge_on_a_full_disk_is_recorded_and_repair_catches_the_mirror_up(
    client: APIClient,
    coder: Persona,
    data_disk: DataDisk,
    django_capture_on_commit_callbacks: Any,
) -> None:
    data_disk.fill()

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(URL + "/charge", CHARGE, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(URL + "/charge", {**CHARGE, "request_id": "req-2"}, format="json")

    assert first.status_code == 200, first.content
    assert second.status_code == 200, second.content
    assert first.json()["recorded"] is True
    assert Charge.objects.count() == 2
    assert client.get(URL).json()["spend"]["today_usd"] == 0.5
    mirror_file = mirror.mirror_path("hermes", "coder")
    assert not mirror_file.exists() or mirror_file.read_bytes() == b""
    with pytest.raises(CommandError):
        ledger("verify")

    data_disk.free()
    repaired = ledger("repair")
    ledger("verify")  # raises on any difference

    assert "appended 2" in repaired, repaired
    lines = [json.loads(raw) for raw in mirror_file.read_bytes().splitlines()]
    assert [line["request_id"] for line in lines] == ["req-1", "req-2"]
    assert ledger("repair").count("appended 2") == 0  # idempotent
