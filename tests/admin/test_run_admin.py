"""Runs in the admin: the list with gauges, a run's report with checkpoints, extend and
close through the run services (audited with the operator), the persona page's runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from budgets.models import Run
from budgets.runs.services import RunBudget, run_create
from budgets.services import budget_charge
from personas.models import Persona

pytestmark = pytest.mark.django_db
USD = 1_000_000_000


@pytest.fixture
def coder(make_persona: Callable[..., Any]) -> Persona:
    persona: Persona = make_persona(budget_toml="daily_usd = 50.0\n")
    return persona


@pytest.fixture
def run(coder: Persona, monkeypatch: pytest.MonkeyPatch) -> Run:
    # The pages read the clock: fixed, so "1 min 30 s" never becomes 31 s on a slow run.
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    created = now - dt.timedelta(seconds=90)
    run_create(
        persona=coder,
        run_id="goal-7",
        label="fix the flaky test",
        budget=RunBudget(2 * USD, 1000, 600),
        actor="key:abc (tests)",
        now=created,
    )
    budget_charge(
        persona=coder,
        surface="s",
        model="m",
        cost_nanos=USD * 17 // 10,
        request_id="r1",
        input_tokens=300,
        run_id="goal-7",
    )
    return Run.objects.get(run_id="goal-7")


def run_url(run: Run, action: str = "change") -> str:
    return reverse(f"admin:budgets_run_{action}", args=[run.pk])


def test_the_list_shows_state_and_gauges(staff_client: Client, run: Run) -> None:
    page = staff_client.get(reverse("admin:budgets_run_changelist")).content.decode()
    assert "goal-7" in page
    assert "hal0-run-active" in page
    assert "USD: $1.7000 of $2.0000" in page
    assert 'data-kind="usd" data-status="warn"' in page  # 85 % of the budget
    assert "Tokens: 300 of 1,000" in page
    assert "Time: 1 min 30 s of 10 min 00 s" in page


def test_a_runs_page_has_its_checkpoints_and_the_actions(staff_client: Client, run: Run) -> None:
    page = staff_client.get(run_url(run)).content.decode()
    assert 'data-kind="created"' in page
    assert "key:abc (tests)" in page
    assert 'id="hal0-extend"' in page
    assert 'id="hal0-close"' in page


def test_extend_in_the_admin_adds_by_omks_rule_and_names_the_operator(
    staff_client: Client, run: Run
) -> None:
    Run.objects.filter(pk=run.pk).update(state="needs_budget", exhausted_limit="run_usd")
    response = staff_client.post(run_url(run, "extend"), {"usd": "1", "tokens": "", "seconds": ""})
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.budget_nanos, run.state) == (3 * USD, "active")
    step = run.checkpoints.get(kind="extended")
    assert step.actor == "user:olivia"
    page = staff_client.get(run_url(run)).content.decode()
    assert "Extended run goal-7: it is active now." in page


@pytest.mark.parametrize(
    "form",
    [
        {"usd": "0"},
        {"usd": "-1"},
        {"usd": "lots"},
        {"tokens": "0"},
        {"usd": "", "tokens": "", "seconds": ""},
    ],
)
def test_extend_refuses_nothing_zero_and_nonsense(
    staff_client: Client, run: Run, form: dict[str, str]
) -> None:
    staff_client.post(run_url(run, "extend"), form)
    run.refresh_from_db()
    assert run.budget_nanos == 2 * USD
    assert not run.checkpoints.filter(kind="extended").exists()
    page = staff_client.get(run_url(run)).content.decode()
    assert "Nothing was added" in page


def test_close_in_the_admin(staff_client: Client, run: Run) -> None:
    staff_client.post(run_url(run, "close"))
    run.refresh_from_db()
    assert run.state == "closed"
    assert run.checkpoints.get(kind="closed").actor == "user:olivia"
    page = staff_client.get(run_url(run)).content.decode()
    assert 'id="hal0-run-closed"' in page
    assert 'id="hal0-extend"' not in page


def test_extend_and_close_need_the_change_permission_and_a_post(
    run: Run, django_user_model: Any, client: Client, staff_client: Client
) -> None:
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)
    assert client.post(run_url(run, "close")).status_code == 403
    assert client.post(run_url(run, "extend"), {"usd": "5"}).status_code == 403
    assert 'id="hal0-extend"' not in client.get(run_url(run)).content.decode()
    assert staff_client.get(run_url(run, "close")).status_code == 405
    run.refresh_from_db()
    assert (run.state, run.budget_nanos) == ("active", 2 * USD)


def test_the_persona_page_lists_its_runs(staff_client: Client, run: Run, coder: Persona) -> None:
    page = staff_client.get(reverse("admin:personas_persona_change", args=[coder.pk]))
    html = page.content.decode()
    assert 'id="hal0-runs"' in html
    assert 'data-run="goal-7"' in html
    listing = staff_client.get(
        reverse("admin:budgets_run_changelist") + f"?persona__id__exact={coder.pk}"
    )
    assert listing.status_code == 200
    assert "goal-7" in listing.content.decode()
