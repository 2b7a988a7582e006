"""The stop switch in the admin: one button, a confirmation saying what it stops, the
same click to resume; shown on the persona page, the lists and every page's banner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from budgets.services import budget_check
from personas import paths
from personas.models import BudgetChange, Persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def coder(make_persona: Callable[..., Any]) -> Persona:
    persona: Persona = make_persona(budget_toml="daily_usd = 5.0  # the day's money\n")
    return persona


def pause_url(persona: Persona) -> str:
    return reverse("admin:personas_persona_pause", args=[persona.pk])


def change_url(persona: Persona) -> str:
    return reverse("admin:personas_persona_change", args=[persona.pk])


def test_the_confirmation_says_what_pausing_stops_and_changes_nothing(
    staff_client: Client, coder: Persona
) -> None:
    page = staff_client.get(pause_url(coder)).content.decode()
    assert "Pausing hermes/coder stops every call it asks to make." in page
    assert "Every budget check of this persona is refused" in page
    assert "Charges for calls already made are still recorded" in page
    assert 'name="paused" value="1"' in page
    assert Persona.objects.get(pk=coder.pk).paused is False
    assert not BudgetChange.objects.exists()


def test_confirming_pauses_writes_the_file_and_names_the_operator(
    staff_client: Client, coder: Persona
) -> None:
    response = staff_client.post(pause_url(coder), {"paused": "1"}, follow=True)
    page = response.content.decode()
    assert "Paused: every check of hermes/coder is refused until you resume it." in page
    assert 'id="hal0-paused"' in page  # the persona page's own banner
    assert 'id="hal0-paused-banner"' in page  # the every-page banner
    assert ">Resume<" in page
    assert "paused = true" in paths.persona_file("hermes", "coder").read_text()
    change = BudgetChange.objects.get()
    assert (change.actor, change.via, change.after.get("paused")) == ("user:olivia", "admin", True)
    assert budget_check(persona=Persona.objects.get(pk=coder.pk), estimate_nanos=0)["limit"] == (
        "paused"
    )


def test_resuming_is_the_same_click(staff_client: Client, coder: Persona) -> None:
    staff_client.post(pause_url(coder), {"paused": "1"})
    confirm = staff_client.get(pause_url(coder)).content.decode()
    assert 'name="paused" value="0"' in confirm
    assert "Yes, resume hermes/coder" in confirm
    page = staff_client.post(pause_url(coder), {"paused": "0"}, follow=True).content.decode()
    assert "Resumed: checks of hermes/coder follow its caps again." in page
    assert 'id="hal0-paused-banner"' not in page
    assert budget_check(persona=Persona.objects.get(pk=coder.pk), estimate_nanos=1)["allowed"]
    text = paths.persona_file("hermes", "coder").read_text()
    assert "daily_usd = 5.0  # the day's money" in text


def test_a_repeated_submit_never_flips_the_switch_back(
    staff_client: Client, coder: Persona
) -> None:
    staff_client.post(pause_url(coder), {"paused": "1"})
    staff_client.post(pause_url(coder), {"paused": "1"})
    assert Persona.objects.get(pk=coder.pk).paused is True
    assert BudgetChange.objects.count() == 1


def test_the_lists_show_a_paused_persona_unmistakably(staff_client: Client, coder: Persona) -> None:
    staff_client.post(pause_url(coder), {"paused": "1"})
    for url in (
        reverse("admin:personas_persona_changelist"),
        reverse("admin:personas_agent_change", args=["hermes"]),
        reverse("admin:spend"),
    ):
        page = staff_client.get(url).content.decode()
        assert '<span class="hal0-pill paused"' in page, url


def test_saving_the_caps_form_keeps_the_persona_paused(
    staff_client: Client, coder: Persona
) -> None:
    staff_client.post(pause_url(coder), {"paused": "1"})
    persona = Persona.objects.get(pk=coder.pk)
    staff_client.post(
        change_url(persona),
        {"daily_usd": "6", "hard_cap": "on", "file_sha256": persona.content_sha256},
    )
    persona = Persona.objects.get(pk=coder.pk)
    assert persona.daily_cap_nanos == 6_000_000_000
    assert persona.paused is True


def test_a_view_only_account_cannot_pause(
    coder: Persona, django_user_model: Any, client: Client
) -> None:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_persona"))
    client.force_login(user)
    assert client.post(pause_url(coder), {"paused": "1"}).status_code == 403
    assert Persona.objects.get(pk=coder.pk).paused is False
