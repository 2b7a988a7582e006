"""The agent's and the platform's budget pages: the persona page's form, saved through
write_scope_budget, audited with the operator's name, never over a hand edit or a broken
file; their gauges; the tightest scope on the persona page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from budgets.events.models import Event
from personas import paths
from personas.models import Agent, BudgetChange, Persona, Platform
from personas.services import resolve_persona
from personas.services.scopes import PLATFORM, agent_scope, sync_scope
from tests.budgets.ledger_support import record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000
AGENT_TOML = """\
# Hermes' agent-wide caps, tuned by hand. Keep this comment.
[agent]
id = "hermes"
display_name = "Hermes"

[agent.budget]
daily_usd = 5.0   # across all personas
hard_cap = true
note = "an unknown key stays"
"""
PLATFORM_TOML = """\
# The whole platform. Keep this comment.
[platform.budget]
monthly_usd = 100.0
hard_cap = true
"""


@pytest.fixture
def hermes(agent: Agent) -> Agent:
    paths.agent_file("hermes").write_text(AGENT_TOML, encoding="utf-8")
    row = sync_scope(agent_scope("hermes"))
    assert isinstance(row, Agent)
    BudgetChange.objects.all().delete()  # setup, not an operator's edit
    Event.objects.all().delete()
    return row


AGENT_URL = "/admin/personas/agent/hermes/change/"


def platform_url() -> str:
    return f"/admin/personas/platform/{Platform.ID}/change/"


def form_data(client: Client, url: str, **changes: str) -> dict[str, str]:
    """What the browser would post: the page's values (inline management forms too),
    with ``changes`` typed in."""
    context = client.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    for inline in context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management[name].value())
        for row in inline.formset.forms:  # the rows' hidden ids, as the page has them
            for name in ("id", "agent"):
                value = row[name].value()
                data[row.add_prefix(name)] = "" if value is None else str(value)
    data.update(changes)
    for flag in ("hard_cap", "paused"):
        if data.get(flag) in (False, "", None):
            data.pop(flag, None)
        else:
            data[flag] = "on"
    data["_save"] = "Save"
    return data


def agent_text() -> str:
    return paths.agent_file("hermes").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------
# The agent page


def test_the_agent_page_shows_its_caps_and_what_empty_means(
    staff_client: Client, hermes: Agent
) -> None:
    response = staff_client.get(AGENT_URL)
    form = response.context["adminform"].form
    assert form["daily_usd"].value() == "5"
    assert form["monthly_usd"].value() == ""
    assert form["daily_tokens"].value() == ""
    body = response.content.decode()
    assert "agents/hermes/agent.toml" in body
    assert "Empty = no cap. 0 = a cap of zero" in body
    assert 'id="hal0-spend"' in body  # the gauges


def test_the_agent_page_of_an_id_the_admin_escapes_in_its_url_names_it_and_its_audit(
    staff_client: Client,
) -> None:
    from django.contrib.admin.utils import quote

    from personas.services import provision_agent

    provision_agent("my_agent")
    url = f"/admin/personas/agent/{quote('my_agent')}/change/"
    assert "_5F" in url  # the admin escapes "_" in its URLs
    response = staff_client.get(url)
    assert response.status_code == 200
    assert response.context["subtitle"] == "agent my_agent"
    assert "audit" in response.context  # the page's own context, not the admin's default


def test_saving_the_agent_rewrites_only_its_budget_block_and_audits_who(
    staff_client: Client, hermes: Agent
) -> None:
    data = form_data(
        staff_client, AGENT_URL, daily_usd="2.5", monthly_tokens="1,000,000", lifetime_usd="0"
    )
    response = staff_client.post(AGENT_URL, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    text = agent_text()
    assert "# Hermes' agent-wide caps, tuned by hand. Keep this comment." in text
    assert 'note = "an unknown key stays"' in text
    assert re.search(r"^daily_usd = 2\.5", text, re.M)
    assert re.search(r"^lifetime_usd = 0(\.0)?$", text, re.M)
    assert re.search(r"^monthly_tokens = 1000000$", text, re.M)
    change = BudgetChange.objects.get(via="admin")
    assert change.scope == "agent"
    assert change.agent_id == "hermes"
    assert change.actor == "user:olivia"
    assert change.before == {"daily_usd": 5.0, "hard_cap": True}
    assert change.after == {
        "daily_usd": 2.5,
        "lifetime_usd": 0.0,
        "monthly_tokens": 1_000_000,
        "hard_cap": True,
    }
    # The same budget.changed as any cap change (the outbox, in the writer's transaction).
    event = Event.objects.get(type="budget.changed")
    assert event.scope_kind == "agent"
    hermes.refresh_from_db()
    assert hermes.daily_cap_nanos == 2_500_000_000
    assert hermes.monthly_cap_tokens == 1_000_000
    page = staff_client.get(AGENT_URL).content.decode()
    assert "agent hermes&#x27;s caps are in agents/hermes/agent.toml and in force now" in page
    assert "daily cap $5.00 → $2.50" in page
    assert "monthly token cap no cap → 1,000,000" in page
    assert "user:olivia" in page  # the page's own audit list


def test_the_agent_can_be_paused_from_its_form(staff_client: Client, hermes: Agent) -> None:
    staff_client.post(AGENT_URL, form_data(staff_client, AGENT_URL, paused="on"))
    assert re.search(r"^paused = true$", agent_text(), re.M)
    assert Event.objects.filter(type="budget.paused", scope_kind="agent").count() == 1
    body = staff_client.get(AGENT_URL).content.decode()
    assert 'id="hal0-paused"' in body
    # The stop switch's banner, on every page, names the agent and links to it.
    banner = staff_client.get("/admin/spend/").content.decode().split('id="hal0-paused-banner"')[1]
    assert f'<a href="{AGENT_URL}">agent hermes</a>' in banner.split("</div>")[0]
    # Unticked and saved: resumed.
    staff_client.post(AGENT_URL, form_data(staff_client, AGENT_URL, paused=""))
    assert not re.search(r"^paused = true$", agent_text(), re.M)
    assert "hal0-paused-banner" not in staff_client.get("/admin/spend/").content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("daily_usd", "-1", "must be &gt;= 0"),
        ("daily_tokens", "1.5", "whole number of tokens"),
        ("monthly_tokens", "-3", "cannot be negative"),
        ("lifetime_tokens", "10000000000000000", "at most"),
        ("timezone", "Mars/Olympus_Mons", "Unknown timezone"),
        ("warn_at", "1.5", "at most 1"),
    ],
)
def test_a_bad_agent_value_is_shown_on_its_field_and_nothing_is_written(
    staff_client: Client, hermes: Agent, field: str, value: str, message: str
) -> None:
    before = agent_text()
    response = staff_client.post(AGENT_URL, form_data(staff_client, AGENT_URL, **{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert agent_text() == before
    assert not BudgetChange.objects.exists()


def test_a_hand_edit_of_agent_toml_since_the_page_was_opened_is_not_overwritten(
    staff_client: Client, hermes: Agent
) -> None:
    data = form_data(staff_client, AGENT_URL, daily_usd="1")
    edited = AGENT_TOML.replace("daily_usd = 5.0", "daily_usd = 7.0")
    paths.agent_file("hermes").write_text(edited, encoding="utf-8")

    response = staff_client.post(AGENT_URL, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="hal0-conflict"' in body
    assert "agents/hermes/agent.toml changed since you opened this page" in body
    assert "$7.00" in body  # the file now
    assert "$1.00" in body  # the operator's value
    assert agent_text() == edited
    assert not BudgetChange.objects.filter(via="admin").exists()
    # The hand edit itself was taken in and audited, and is in force.
    assert BudgetChange.objects.filter(via="file", scope="agent").count() == 1
    hermes.refresh_from_db()
    assert hermes.daily_cap_nanos == 7 * USD

    # Saving again applies the operator's value on top, deliberately.
    data["file_sha256"] = response.context["adminform"].form["file_sha256"].value()
    assert staff_client.post(AGENT_URL, data).status_code == 302
    assert re.search(r"^daily_usd = 1(\.0)?", agent_text(), re.M)


def test_a_malformed_agent_toml_is_shown_never_overwritten_and_never_lifts_caps(
    staff_client: Client, hermes: Agent
) -> None:
    data = form_data(staff_client, AGENT_URL, daily_usd="")  # "no cap"
    broken = AGENT_TOML.replace("daily_usd = 5.0", "daily_usd = -5.0")
    paths.agent_file("hermes").write_text(broken, encoding="utf-8")

    page = staff_client.get(AGENT_URL).content.decode()
    assert 'id="hal0-malformed"' in page
    assert "daily_usd" in page
    response = staff_client.post(AGENT_URL, data)
    assert response.status_code == 200
    assert "agents/hermes/agent.toml is malformed" in response.content.decode()
    assert agent_text() == broken
    assert not BudgetChange.objects.exists()
    hermes.refresh_from_db()
    assert hermes.daily_cap_nanos == 5 * USD  # the last good cap stays in force
    assert hermes.load_error


def test_an_agent_without_agent_toml_gets_one_on_first_save(
    staff_client: Client, agent: Agent
) -> None:
    paths.agent_file("hermes").unlink()
    page = staff_client.get(AGENT_URL).content.decode()
    assert "no agents/hermes/agent.toml: no caps at this scope" in page
    staff_client.post(AGENT_URL, form_data(staff_client, AGENT_URL, daily_usd="3"))
    assert re.search(r"^daily_usd = 3(\.0)?$", agent_text(), re.M)
    assert BudgetChange.objects.get(via="admin", scope="agent").after["daily_usd"] == 3.0


# ---------------------------------------------------------------------------------------
# The platform page


def test_the_platform_page_is_in_the_nav_and_its_list_is_its_page(staff_client: Client) -> None:
    body = staff_client.get("/admin/tables/").content.decode()
    assert 'id="hal0-nav-platform"' in body
    response = staff_client.get("/admin/personas/platform/")
    assert response.status_code == 302
    assert response["Location"] == platform_url()
    page = staff_client.get(platform_url()).content.decode()
    assert "no platform.toml: no caps at this scope" in page


def test_saving_the_platform_writes_platform_toml_and_audits_who(staff_client: Client) -> None:
    url = platform_url()
    staff_client.get("/admin/personas/platform/")
    data = form_data(staff_client, url, monthly_usd="100", daily_tokens="5000000")
    assert staff_client.post(url, data).status_code == 302
    text = paths.platform_file().read_text(encoding="utf-8")
    assert re.search(r"^monthly_usd = 100(\.0)?$", text, re.M)
    assert re.search(r"^daily_tokens = 5000000$", text, re.M)
    change = BudgetChange.objects.get(via="admin")
    assert change.scope == "platform"
    assert change.actor == "user:olivia"
    assert Event.objects.filter(type="budget.changed", scope_kind="platform").count() == 1


def test_a_hand_edit_of_platform_toml_under_the_form_is_a_conflict(staff_client: Client) -> None:
    paths.platform_file().write_text(PLATFORM_TOML, encoding="utf-8")
    staff_client.get("/admin/personas/platform/")
    url = platform_url()
    data = form_data(staff_client, url, monthly_usd="50")
    edited = PLATFORM_TOML.replace("100.0", "80.0")
    paths.platform_file().write_text(edited, encoding="utf-8")
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert 'id="hal0-conflict"' in response.content.decode()
    assert paths.platform_file().read_text(encoding="utf-8") == edited


def test_a_malformed_platform_toml_keeps_its_caps(staff_client: Client) -> None:
    paths.platform_file().write_text(PLATFORM_TOML, encoding="utf-8")
    staff_client.get("/admin/personas/platform/")
    url = platform_url()
    data = form_data(staff_client, url, monthly_usd="")
    paths.platform_file().write_text("[platform.budget\nmonthly_usd = 1", encoding="utf-8")
    assert 'id="hal0-malformed"' in staff_client.get(url).content.decode()
    response = staff_client.post(url, data)
    assert "platform.toml is malformed" in response.content.decode()
    row = Platform.objects.get()
    assert row.monthly_cap_nanos == 100 * USD


# ---------------------------------------------------------------------------------------
# Gauges and the tightest scope


def _charge(persona: Persona, nanos: int, **extra: Any) -> None:
    record(persona, 1, ts=timezone.now(), cost_nanos=nanos, **extra)


def test_the_agent_page_gauges_sum_its_personas(staff_client: Client, hermes: Agent) -> None:
    agent_persona = resolve_persona(hermes, "hermes")
    coder = resolve_persona(hermes, "coder")
    _charge(agent_persona, 2 * USD)
    _charge(coder, 2 * USD)  # 4 of 5: warn at 0.8
    response = staff_client.get(AGENT_URL)
    spend = response.context["scope_spend"]
    assert spend.window("daily").spent_nanos == 4 * USD
    assert spend.status == "warn"
    body = response.content.decode()
    assert 'data-window="daily" data-status="warn"' in body
    assert "$4.00" in body
    assert "$1.00" in body  # remaining


def test_the_persona_page_names_the_tightest_scope_and_links_to_it(
    staff_client: Client, hermes: Agent, make_persona: Any
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 3.0\n")
    url = f"/admin/personas/persona/{coder.pk}/change/"
    # Persona: 3.00 left today; agent: 5.00 left: the persona's own cap is the tightest.
    first = staff_client.get(url)
    assert first.context["tightest_overall"].kind == "persona"
    assert '<span data-scope="persona" id="hal0-tightest-scope">' in first.content.decode()
    # Another persona of the agent spends 4.00: the agent has 1.00 left, less than 3.00.
    _charge(resolve_persona(hermes, "hermes"), 4 * USD)
    response = staff_client.get(url)
    overall = response.context["tightest_overall"]
    assert overall.kind == "agent"
    assert overall.window == "daily"
    assert overall.headroom == 1 * USD
    body = response.content.decode()
    assert (
        f'<a href="{AGENT_URL}" data-scope="agent" id="hal0-tightest-scope">agent hermes</a>'
        in body
    )
    # A platform cap tighter still moves it to the platform.
    paths.platform_file().write_text("[platform.budget]\ndaily_usd = 4.5\n", encoding="utf-8")
    response = staff_client.get(url)
    assert response.context["tightest_overall"].kind == "platform"
    assert 'data-scope="platform" id="hal0-tightest-scope"' in response.content.decode()


def test_token_caps_of_a_persona_survive_a_save_of_its_usd_caps(
    staff_client: Client, make_persona: Any
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 3.0\ndaily_tokens = 50000\n")
    url = f"/admin/personas/persona/{coder.pk}/change/"
    assert staff_client.post(url, form_data(staff_client, url, daily_usd="2")).status_code == 302
    text = Path(paths.persona_file("hermes", "coder")).read_text(encoding="utf-8")
    assert re.search(r"^daily_tokens = 50000$", text, re.M)
    assert re.search(r"^daily_usd = 2(\.0)?$", text, re.M)


def test_the_platform_gauges_read_every_agent(staff_client: Client, make_persona: Any) -> None:
    paths.platform_file().write_text(PLATFORM_TOML, encoding="utf-8")
    _charge(make_persona("hermes", "coder"), 30 * USD)
    _charge(make_persona("atlas", "scout"), 60 * USD)
    staff_client.get("/admin/personas/platform/")
    spend = staff_client.get(platform_url()).context["scope_spend"]
    assert spend.window("monthly").spent_nanos == 90 * USD
    assert spend.status == "warn"
    assert sync_scope(PLATFORM).monthly_cap_nanos == 100 * USD


def test_a_staff_account_that_may_only_view_an_agent_sees_its_caps_and_cannot_change_them(
    hermes: Agent, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "victor", password="a-long-viewer-passphrase", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_agent"))
    client = Client()
    client.force_login(viewer)
    body = client.get(AGENT_URL).content.decode()
    budget = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body[body.index("hal0-budget") :]))
    assert "Daily cap: $5.00" in budget
    assert "Monthly cap: no cap" in budget
    assert "Token caps: no token caps" in budget
    assert "Stop switch: off" in budget
    assert 'name="_save"' not in body
    before = agent_text()
    data = {"daily_usd": "1", "file_sha256": "", "_save": "Save"}
    assert client.post(AGENT_URL, data).status_code == 403
    assert agent_text() == before


def test_the_audit_trail_links_agent_and_platform_changes_to_their_pages(
    staff_client: Client, hermes: Agent
) -> None:
    staff_client.post(AGENT_URL, form_data(staff_client, AGENT_URL, daily_usd="4"))
    staff_client.get("/admin/personas/platform/")
    url = platform_url()
    staff_client.post(url, form_data(staff_client, url, daily_usd="40"))
    body = staff_client.get("/admin/personas/budgetchange/").content.decode()
    assert f'<a href="{AGENT_URL}">agent hermes</a>' in body
    assert '<a href="/admin/personas/platform/">platform</a>' in body


def test_a_view_only_account_sees_a_persona_s_token_caps(
    make_persona: Any, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    coder = make_persona("hermes", "coder", "daily_tokens = 50000\n")
    viewer = django_user_model.objects.create_user("victor", password="x-long-pass", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_persona"))
    client = Client()
    client.force_login(viewer)
    body = client.get(f"/admin/personas/persona/{coder.pk}/change/").content.decode()
    budget = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body[body.index("hal0-budget") :]))
    assert "Token caps: daily 50,000 tokens" in budget
