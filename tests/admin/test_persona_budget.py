"""Changing a persona's caps in the admin: through write_budget, audited, never lossy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from personas import paths
from personas.admin.budget_form import cap_note
from personas.models import BudgetChange, Persona
from personas.services import provision_agent, resolve_agent, resolve_persona
from personas.toml_store import sha256_bytes

pytestmark = pytest.mark.django_db

CODER = """\
# Coder, tuned by hand. Keep this comment.
[persona]
id = "coder"
display_name = "Coder"
summary = "Programming helper."

[persona.prompt]
system = "Cite file:line."

[persona.budget]
daily_usd = 5.0   # resets at midnight
monthly_usd = 50.0
hard_cap = true
note = "an unknown key stays"
"""


@pytest.fixture
def coder(db: None) -> Persona:
    provision_agent("hermes")
    path = paths.persona_file("hermes", "coder")
    path.write_text(CODER, encoding="utf-8")
    return resolve_persona(resolve_agent("hermes"), "coder")


def file_of(persona: Persona) -> Path:
    return paths.persona_file(persona.agent_id, persona.slug)


def url(persona: Persona) -> str:
    return f"/admin/personas/persona/{persona.pk}/change/"


def form_data(persona: Persona, client: Client, **changes: str) -> dict[str, str]:
    """What the browser would post: the page's own values, with ``changes`` typed in."""
    form = client.get(url(persona)).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(changes)
    if data.get("hard_cap") in (False, "", None):
        data.pop("hard_cap", None)
    else:
        data["hard_cap"] = "on"
    data["_save"] = "Save"
    return data


def test_the_page_shows_the_caps_from_the_file_and_what_empty_means(
    staff_client: Client, coder: Persona
) -> None:
    response = staff_client.get(url(coder))
    body = response.content.decode()
    form = response.context["adminform"].form
    assert form["daily_usd"].value() == "5"
    assert form["monthly_usd"].value() == "50"
    assert form["lifetime_usd"].value() == ""
    assert form["file_sha256"].value() == sha256_bytes(file_of(coder).read_bytes())
    assert 'placeholder="no cap"' in body
    assert "Empty = no cap. 0 = a cap of zero" in body
    assert "Budget" in body


def test_saving_rewrites_only_the_budget_block_and_audits_who(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, daily_usd="2.5", lifetime_usd="0", monthly_usd="")
    response = staff_client.post(url(coder), data)
    assert response.status_code == 302
    assert response["Location"] == url(coder)
    text = file_of(coder).read_text(encoding="utf-8")
    assert "# Coder, tuned by hand. Keep this comment." in text
    assert 'system = "Cite file:line."' in text
    assert 'note = "an unknown key stays"' in text
    assert re.search(r"^daily_usd = 2\.5", text, re.M)
    assert re.search(r"^lifetime_usd = 0(\.0)?$", text, re.M)  # 0 is a cap of zero
    assert "monthly_usd" not in text  # empty is no cap
    change = BudgetChange.objects.get(via="admin")
    assert change.actor == "user:olivia"
    assert change.before == {"daily_usd": 5.0, "monthly_usd": 50.0, "hard_cap": True}
    assert change.after == {"daily_usd": 2.5, "lifetime_usd": 0.0, "hard_cap": True}
    coder.refresh_from_db()
    assert coder.daily_cap_nanos == 2_500_000_000
    assert coder.lifetime_cap_nanos == 0
    assert coder.monthly_cap_nanos is None
    page = staff_client.get(url(coder)).content.decode()
    assert "caps are in its file and in force now" in page


def test_hard_cap_warn_at_and_timezone_are_saved_too(staff_client: Client, coder: Persona) -> None:
    data = form_data(coder, staff_client, warn_at="0.5", timezone="Europe/Berlin", hard_cap="")
    staff_client.post(url(coder), data)
    text = file_of(coder).read_text(encoding="utf-8")
    assert "hard_cap = false" in text
    assert "warn_at = 0.5" in text
    assert 'timezone = "Europe/Berlin"' in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("daily_usd", "-1", "must be &gt;= 0"),
        ("monthly_usd", "lots", "Enter an amount in USD"),
        ("lifetime_usd", "NaN", "finite"),
        ("per_call_max_usd", "1e12", "at most"),
        ("timezone", "Mars/Olympus_Mons", "Unknown timezone"),
        ("timezone", "localtime", "Unknown timezone"),
        ("timezone", "Factory", "Unknown timezone"),
        ("timezone", "posix/Europe/Berlin", "Unknown timezone"),
        ("warn_at", "1.5", "at most 1"),
        ("warn_at", "0.123456", "decimal places"),
    ],
)
def test_a_bad_value_is_shown_on_its_field_and_nothing_is_written(
    staff_client: Client, coder: Persona, field: str, value: str, message: str
) -> None:
    before = file_of(coder).read_bytes()
    response = staff_client.post(url(coder), form_data(coder, staff_client, **{field: value}))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert field in form.errors, form.errors
    assert message in response.content.decode()
    assert file_of(coder).read_bytes() == before
    assert not BudgetChange.objects.filter(via="admin").exists()
    coder.refresh_from_db()
    assert coder.daily_cap_nanos == 5_000_000_000


def test_a_hand_edit_since_the_page_was_opened_is_not_overwritten(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, daily_usd="1")
    edited = CODER.replace("daily_usd = 5.0", "daily_usd = 7.0")
    file_of(coder).write_text(edited, encoding="utf-8")

    response = staff_client.post(url(coder), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="hal0-conflict"' in body
    assert "The file changed on disk while you were editing" in body
    assert "$7.00" in body  # what the file says now
    assert "$1.00" in body  # what the operator typed
    assert file_of(coder).read_text(encoding="utf-8") == edited
    assert not BudgetChange.objects.filter(via="admin").exists()
    # The hand edit itself was noticed and audited (after the fixture's own edit).
    assert BudgetChange.objects.filter(via="file").count() == 2

    # Saving again is a deliberate choice: it applies the operator's value on top.
    form = response.context["adminform"].form
    data["file_sha256"] = form["file_sha256"].value()
    assert data["file_sha256"] == sha256_bytes(edited.encode())
    assert staff_client.post(url(coder), data).status_code == 302
    assert re.search(r"^daily_usd = 1(\.0)?", file_of(coder).read_text(encoding="utf-8"), re.M)


def test_persona_fields_other_than_the_budget_are_read_only(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, display_name="Hacked", summary="Hacked")
    staff_client.post(url(coder), data)
    coder.refresh_from_db()
    assert coder.display_name == "Coder"
    assert "Hacked" not in file_of(coder).read_text(encoding="utf-8")
    body = staff_client.get(url(coder)).content.decode()
    assert 'name="display_name"' not in body
    assert "deletelink" not in body


def test_saving_the_same_caps_writes_nothing(staff_client: Client, coder: Persona) -> None:
    before = file_of(coder).read_bytes()
    response = staff_client.post(url(coder), form_data(coder, staff_client), follow=True)
    assert "Nothing to save" in response.content.decode()
    assert file_of(coder).read_bytes() == before
    assert not BudgetChange.objects.filter(via="admin").exists()


def test_a_malformed_file_is_reported_and_never_overwritten(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, daily_usd="1")
    broken = CODER.replace("daily_usd = 5.0", "daily_usd = -5.0")
    file_of(coder).write_text(broken, encoding="utf-8")
    page = staff_client.get(url(coder)).content.decode()
    assert 'id="hal0-malformed"' in page
    assert "last good caps stay in force" in page
    data["file_sha256"] = sha256_bytes(broken.encode())
    response = staff_client.post(url(coder), data)
    assert response.status_code == 200
    assert "malformed" in response.content.decode()
    assert file_of(coder).read_text(encoding="utf-8") == broken
    assert not BudgetChange.objects.filter(via="admin").exists()


def test_the_persona_page_lists_its_cap_changes(
    staff_client: Client, coder: Persona, api_client: Any
) -> None:
    staff_client.post(url(coder), form_data(coder, staff_client, daily_usd="3"))
    from personas.services import write_budget
    from personas.toml_store import parse_budget_mapping

    write_budget(
        coder,
        parse_budget_mapping({"daily_usd": 4}),
        actor="key:AbCd1234 (ci)",
        via="api",
    )
    body = staff_client.get(url(coder)).content.decode()
    audit = body[body.index('id="hal0-audit"') :]
    assert "user:olivia" in audit
    assert "key:AbCd1234 (ci)" in audit
    assert audit.index("key:AbCd1234") < audit.index("user:olivia")  # newest first
    assert "daily cap" in audit
    listing = staff_client.get("/admin/personas/budgetchange/").content.decode()
    assert "user:olivia" in listing
    assert "key:AbCd1234 (ci)" in listing


def test_nobody_adds_or_deletes_personas_here(staff_client: Client, coder: Persona) -> None:
    assert staff_client.get("/admin/personas/persona/add/").status_code == 403
    assert staff_client.post(f"{url(coder)[:-7]}delete/", {"post": "yes"}).status_code == 403
    assert file_of(coder).exists()


def _note_beside(body: str, field: str) -> str:
    """The note rendered right after a cap field's input."""
    note = r'<span class="hal0-capnote ([a-z]+)"[^>]*>([^<]*)<'
    match = re.search(rf'id="id_{field}".*?{note}', body, re.S)
    assert match, field
    return f"{match.group(1)}: {match.group(2)}"


def test_empty_and_zero_read_differently_beside_each_field(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, daily_usd="0", monthly_usd="", lifetime_usd="12")
    staff_client.post(url(coder), data)
    body = staff_client.get(url(coder)).content.decode()
    assert _note_beside(body, "daily_usd") == (
        "zero: a cap of zero: every call with a cost is over it"
    )
    assert _note_beside(body, "monthly_usd") == "none: no cap: never limited"
    assert _note_beside(body, "lifetime_usd") == "cap: = $12.00"
    assert 'src="/static/hal0/budget-form.js"' in body  # keeps the notes current as one types
    assert "Empty = no cap. 0 = a cap of zero" in body


def test_the_form_has_one_save_button_next_to_the_caps(
    staff_client: Client, coder: Persona
) -> None:
    body = staff_client.get(url(coder)).content.decode()
    assert body.count('name="_save"') == 1
    assert 'name="_continue"' not in body
    # The read-only details are folded, so Save follows the Budget fields directly.
    assert body.index('id="id_timezone"') < body.index("<details>") < body.index('name="_save"')


def test_a_negative_cap_says_how_to_write_no_cap_and_a_cap_of_zero(
    staff_client: Client, coder: Persona
) -> None:
    response = staff_client.post(url(coder), form_data(coder, staff_client, daily_usd="-2"))
    errors = response.context["adminform"].form.errors["daily_usd"]
    assert errors == [
        "Daily cap cannot be negative (must be >= 0): enter 0 for a cap of zero, "
        "or leave it empty for no cap."
    ]


def test_the_conflict_page_shows_the_hand_edit_it_found_in_the_gauges_and_the_audit(
    staff_client: Client, coder: Persona
) -> None:
    data = form_data(coder, staff_client, daily_usd="1")
    file_of(coder).write_text(CODER.replace("daily_usd = 5.0", "daily_usd = 9.0"), "utf-8")
    response = staff_client.post(url(coder), data)
    assert response.context["spend"].window("daily").cap_nanos == 9_000_000_000
    body = response.content.decode()
    assert 'data-window="daily"' in body
    assert "of $9.00" in body
    audit = body[body.index('id="hal0-audit"') :]
    assert "file edit" in audit
    assert "9.0" in audit
    assert body.count("Nothing was saved") == 1


def test_a_cap_change_through_the_api_with_a_key_shows_on_the_persona_page(
    staff_client: Client, coder: Persona, api_client: Any
) -> None:
    response = api_client.put(
        "/api/agents/hermes/personas/coder/budget",
        {"daily_usd": 4, "hard_cap": True},
        format="json",
    )
    assert response.status_code == 200
    from budgets.models import ApiKey

    prefix = ApiKey.objects.get(name="tests").prefix
    body = staff_client.get(url(coder)).content.decode()
    audit = body[body.index('id="hal0-audit"') :]
    assert f"key:{prefix} (tests)" in audit
    assert "API" in audit
    assert re.search(r"daily cap: .*\$5\.00.*→.*\$4\.00", audit, re.S)


def test_a_staff_account_that_may_only_view_sees_the_caps_and_cannot_change_them(
    coder: Persona, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "victor", password="a-long-viewer-passphrase", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_persona"))
    client = Client()
    client.force_login(viewer)
    body = client.get(url(coder)).content.decode()
    budget = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body[body.index("hal0-budget") :]))
    assert "Daily cap: $5.00" in budget
    assert "Monthly cap: $50.00" in budget
    assert "Lifetime cap: no cap" in budget
    assert "Warn at: 80 % of a cap (default)" in budget
    assert "None" not in budget[: budget.index("Persona details")]
    assert 'name="_save"' not in body
    before = file_of(coder).read_bytes()
    data = {"daily_usd": "1", "file_sha256": sha256_bytes(before), "_save": "Save"}
    assert client.post(url(coder), data).status_code == 403
    assert file_of(coder).read_bytes() == before


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        # A decimal comma was stripped: "0,5" saved a cap of 5.0.
        ("0,5", "&#x27;0,5&#x27; is ambiguous: write decimals with a point (0.5)"),
        ("1,000", "&#x27;1,000&#x27; is ambiguous"),  # one thousand, or one?
        # Below a nano-dollar: rounded to a cap of zero after validation.
        ("0.0000000001", "would be saved as a cap of zero"),
        ("1e-400", "would be saved as a cap of zero"),
        ("2.0000000001", "more than 9 decimal places"),
    ],
)
def test_a_cap_that_would_be_saved_as_another_amount_is_refused(
    staff_client: Client, coder: Persona, typed: str, message: str
) -> None:
    before = file_of(coder).read_bytes()

    response = staff_client.post(url(coder), form_data(coder, staff_client, daily_usd=typed))

    assert response.status_code == 200
    assert "daily_usd" in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert file_of(coder).read_bytes() == before
    coder.refresh_from_db()
    assert coder.daily_cap_nanos == 5_000_000_000


@pytest.mark.parametrize(
    ("typed", "nanos"),
    [
        ("1,234.50", 1_234_500_000_000),
        ("1,000,000", 1_000_000_000_000_000),
        ("$0.5", 500_000_000),
        ("0.000000001", 1),
        ("1e3", 1_000_000_000_000),
    ],
)
def test_unambiguous_amounts_are_saved_as_typed(
    staff_client: Client, coder: Persona, typed: str, nanos: int
) -> None:
    staff_client.post(url(coder), form_data(coder, staff_client, daily_usd=typed))

    coder.refresh_from_db()
    assert coder.daily_cap_nanos == nanos


def test_saved_says_what_changed_before_and_after(staff_client: Client, coder: Persona) -> None:
    data = form_data(coder, staff_client, daily_usd="0.5", lifetime_usd="0", hard_cap="")

    response = staff_client.post(url(coder), data, follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "Saved: hermes/coder's caps are in its file and in force now: "
        "daily cap $5.00 → $0.50; lifetime cap no cap → $0.00; hard cap true → false."
    ]


@pytest.mark.parametrize(
    ("typed", "kind", "note"),
    [
        ("", "none", "no cap: never limited"),
        ("0.00", "zero", "a cap of zero: every call with a cost is over it"),
        ("1234.5", "cap", "= $1,234.50"),
        ("$ 0.125", "cap", "= $0.125"),
        ("1e-9", "cap", "= $0.000000001"),
        ("0,5", "invalid", "ambiguous comma: write 0.5 or 1000"),
        ("1e-400", "invalid", "below $0.000000001: would be a cap of zero"),
        ("0.1234567891", "invalid", "more than 9 decimal places"),
        ("-1", "invalid", "must be a number from 0 to 1,000,000,000"),
        ("2e9", "invalid", "must be a number from 0 to 1,000,000,000"),
        ("five", "invalid", "not an amount"),
    ],
)
def test_the_note_beside_a_cap_says_what_it_will_be_saved_as(
    typed: str, kind: str, note: str
) -> None:
    assert cap_note(typed) == (kind, note)
