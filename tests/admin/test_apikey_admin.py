"""API keys in the admin: created with the key shown once, revoked, never deleted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from budgets.apikeys import create_key
from budgets.models import ApiKey
from personas.models import Agent

pytestmark = pytest.mark.django_db

LIST = "/admin/budgets/apikey/"


def _shown_key(response: object) -> str:
    texts = [str(m) for m in get_messages(response.wsgi_request)]  # type: ignore[attr-defined]
    found = [m for t in texts if (m := re.search(r"<code class='hal0-key'[^>]*>([^<]+)</code>", t))]
    assert len(found) == 1, texts
    return found[0].group(1)


def test_creating_an_operator_key_shows_it_once(staff_client: Client) -> None:
    response = staff_client.post(f"{LIST}add/", {"name": "ci runner", "scope": "operator"})
    assert response.status_code == 302
    raw = _shown_key(response)
    key = ApiKey.objects.get(name="ci runner")
    assert key.scope == "operator"
    assert key.agent is None
    assert ApiKey.objects.is_valid(raw)
    first = staff_client.get(response["Location"]).content.decode()
    assert raw in first
    assert "ci runner" in first
    # Only the hash is kept: no page shows the key again.
    again = staff_client.get(f"{LIST}{key.pk}/change/").content.decode()
    assert raw not in again
    assert key.prefix in again
    assert 'name="_save"' not in again  # a key page is view-only
    assert raw not in staff_client.get(LIST).content.decode()


def test_an_agent_key_is_tied_to_its_agent(staff_client: Client) -> None:
    Agent.objects.create(id="hermes")
    response = staff_client.post(f"{LIST}add/", {"name": "", "scope": "agent", "agent": "hermes"})
    assert response.status_code == 302
    key = ApiKey.objects.get(scope="agent")
    assert key.agent_id == "hermes"
    assert key.name == "agent hermes"
    assert ApiKey.objects.is_valid(_shown_key(response))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scope": "agent"}, "An agent key needs the agent it acts for."),
        ({"scope": "operator", "agent": "hermes"}, "An operator key is not tied to an agent"),
    ],
)
def test_a_scope_that_does_not_match_the_agent_is_refused_on_the_field(
    staff_client: Client, data: dict[str, str], message: str
) -> None:
    Agent.objects.create(id="hermes")
    response = staff_client.post(f"{LIST}add/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_revoke_action_revokes_and_says_so(staff_client: Client) -> None:
    key, raw = create_key(scope="operator", name="old")
    asked = staff_client.post(LIST, {"action": "revoke", "_selected_action": [key.pk]})
    # First a confirmation page that names the key; nothing is revoked yet.
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Revoke API keys?" in page
    assert key.prefix in page
    assert 'id="hal0-revoke-confirm"' in page
    key.refresh_from_db()
    assert not key.revoked
    assert ApiKey.objects.is_valid(raw)
    response = staff_client.post(
        LIST,
        {"action": "revoke", "_selected_action": [key.pk], "confirm": "yes"},
        follow=True,
    )
    assert "Revoked 1 key" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked
    assert not ApiKey.objects.is_valid(raw)


def test_keys_show_when_they_were_last_used_and_cannot_be_deleted(staff_client: Client) -> None:
    key, _ = create_key(scope="operator", name="busy")
    create_key(scope="operator", name="idle")
    used = timezone.now().replace(year=2031, month=3, day=4, hour=5, minute=6)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=used)
    body = staff_client.get(LIST).content.decode()
    rows = {
        name: row
        for row in re.findall(r"<tr>.*?</tr>", body, re.S)
        for name in ("busy", "idle")
        if f">{name}<" in row
    }
    assert "2031-03-04 05:06 UTC" in rows["busy"]  # with its timezone
    assert 'class="field-last_used">never<' in rows["idle"]
    assert "delete_selected" not in body
    assert staff_client.post(f"{LIST}{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_after_adding_a_key_the_list_shows_it_once_without_a_second_message(
    staff_client: Client,
) -> None:
    response = staff_client.post(f"{LIST}add/", {"name": "ci runner", "scope": "operator"})
    assert response["Location"] == LIST
    page = staff_client.get(LIST).content.decode()
    assert page.count("hal0-key") == 1
    assert "was added successfully" not in page


def test_the_library_s_own_key_table_is_not_offered(staff_client: Client) -> None:
    body = staff_client.get("/admin/tables/").content.decode()
    assert "/admin/rest_framework_api_key/" not in body


def test_an_account_that_may_only_view_keys_cannot_revoke_them(django_user_model: Any) -> None:
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "victor", password="a-long-viewer-passphrase", is_staff=True
    )
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_apikey", content_type__app_label="budgets")
    )
    client = Client()
    client.force_login(viewer)
    key, raw = create_key(scope="operator", name="prod")
    page = client.get(LIST)
    assert page.status_code == 200
    assert 'value="revoke"' not in page.content.decode()
    client.post(LIST, {"action": "revoke", "_selected_action": [key.pk], "confirm": "yes"})
    key.refresh_from_db()
    assert not key.revoked
    assert ApiKey.objects.is_valid(raw)


def test_a_key_can_be_given_an_expiry_and_stops_working_then(staff_client: Client) -> None:
    import datetime as dt

    response = staff_client.post(
        f"{LIST}add/",
        {
            "name": "contractor",
            "scope": "operator",
            "expiry_date": "2031-01-02T03:04:05",
        },
    )
    assert response.status_code == 302
    raw = _shown_key(response)
    key = ApiKey.objects.get(name="contractor")
    assert key.expiry_date == dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert ApiKey.objects.is_valid(raw)
    row = staff_client.get(LIST).content.decode().split(">contractor<")[1].split("</tr>")[0]
    assert "2031" in row
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - dt.timedelta(seconds=1))
    assert not ApiKey.objects.is_valid(raw)


def test_an_expiry_in_the_past_is_refused_on_the_field(staff_client: Client) -> None:
    response = staff_client.post(
        f"{LIST}add/",
        {"scope": "operator", "expiry_date": "2001-01-01T00:00"},
    )
    assert response.status_code == 200
    assert "a key must expire in the future" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_add_page_has_one_save_button_and_readable_help(staff_client: Client) -> None:
    body = staff_client.get(f"{LIST}add/").content.decode()
    assert 'name="_save"' in body
    assert 'name="_addanother"' not in body
    assert 'name="_continue"' not in body
    assert "'agent hermes' for an agent key for hermes" in body


def test_the_expiry_is_one_labelled_input(staff_client: Client) -> None:
    body = staff_client.get(f"{LIST}add/").content.decode()
    assert '<label for="id_expiry_date">Expires (UTC):</label>' in body
    assert 'type="datetime-local" name="expiry_date"' in body
    assert 'name="expiry_date_0"' not in body  # no unlabelled halves


def test_the_new_key_has_a_copy_button_beside_it(staff_client: Client) -> None:
    response = staff_client.post(f"{LIST}add/", {"name": "ci runner", "scope": "operator"})
    raw = _shown_key(response)
    page = staff_client.get(LIST).content.decode()
    assert f"<code class='hal0-key' id='hal0-new-key'>{raw}</code>" in page
    assert "class='hal0-copy' data-copy='#hal0-new-key'" in page


def test_an_agent_key_can_be_limited_to_one_persona_and_the_list_shows_it(
    staff_client: Client, make_persona: Any
) -> None:
    coder = make_persona("hermes", "coder", "")
    form = staff_client.get(f"{LIST}add/").content.decode()
    assert ">hermes/coder</option>" in form
    response = staff_client.post(
        f"{LIST}add/", {"scope": "agent", "agent": "hermes", "persona": coder.pk}
    )
    assert response.status_code == 302
    key = ApiKey.objects.get(scope="agent")
    assert (key.agent_id, key.persona_slug, key.name) == ("hermes", "coder", "persona hermes/coder")
    assert ApiKey.objects.is_valid(_shown_key(response))
    page = staff_client.get(LIST).content.decode()
    assert "hermes/coder" in page
    assert "hermes/coder" in staff_client.get(f"{LIST}{key.pk}/change/").content.decode()
    # A key for the whole agent says so.
    create_key(scope="agent", agent_id="hermes", name="whole agent")
    assert "all of the agent&#x27;s" in staff_client.get(LIST).content.decode()


@pytest.mark.parametrize(
    ("scope", "agent", "message"),
    [
        ("agent", "zeus", "hermes/coder is not a persona of zeus."),
        ("operator", "", "Only an agent key can be limited to a persona."),
    ],
)
def test_a_persona_that_does_not_fit_the_key_is_refused_on_the_field(
    staff_client: Client, make_persona: Any, scope: str, agent: str, message: str
) -> None:
    coder = make_persona("hermes", "coder", "")
    Agent.objects.create(id="zeus")
    response = staff_client.post(
        f"{LIST}add/", {"scope": scope, "agent": agent, "persona": coder.pk}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()
