"""Refused checks per persona, local day and limit: counted in memory on the check path
(no write there), written by an upsert that adds, shown on the Spend and persona pages."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from budgets.models import RefusedTally
from budgets.reports import refused
from budgets.services import budget_check
from hal0.money import to_nanos

NOW = dt.datetime(2026, 3, 10, 20, 0, tzinfo=dt.UTC)


@pytest.fixture
def staff_client(db: None, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("olivia", "o@example.com", "pw-olivia-1")
    client = Client()
    client.force_login(user)
    return client


def check(persona: Any, usd: float, now: dt.datetime = NOW) -> dict[str, Any]:
    return budget_check(persona=persona, estimate_nanos=to_nanos(usd), now=now)


def tally() -> dict[tuple[str, str, str, str], int]:
    return {
        (str(r.persona), r.day.isoformat(), r.scope, r.limit): r.count
        for r in RefusedTally.objects.select_related("persona")
    }


def test_refused_checks_are_counted_without_a_write_on_the_check_path(
    make_persona: Any,
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\nper_call_max_usd = 0.5\n")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(4):
            assert not check(persona, 2.0)["allowed"]  # over the per-call cap first
        assert check(persona, 0.1)["allowed"]
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert [w for w in writes if "refusedtally" in w.lower()] == []
    assert refused.pending() == {(persona.pk, dt.date(2026, 3, 10), "persona", "per_call"): 4}
    assert refused.flush() == 1
    assert tally() == {("hermes/coder", "2026-03-10", "persona", "per_call"): 4}
    assert refused.pending() == {}


def test_batches_add_up_as_several_processes_would(make_persona: Any) -> None:
    persona = make_persona(budget_toml="daily_usd = 0.0\n")
    check(persona, 0.1)
    refused.flush()
    check(persona, 0.1)
    check(persona, 0.1)
    refused.flush()
    assert tally() == {("hermes/coder", "2026-03-10", "persona", "daily"): 3}
    assert RefusedTally.objects.get().last_at == NOW


def test_the_day_is_the_persona_s_local_day(make_persona: Any) -> None:
    persona = make_persona(budget_toml='per_call_max_usd = 0.0\ntimezone = "Asia/Tokyo"\n')
    check(persona, 0.1)  # 20:00 UTC on the 10th is 05:00 on the 11th in Tokyo
    refused.flush()
    assert tally() == {("hermes/coder", "2026-03-11", "persona", "per_call"): 1}


def test_allowed_and_warn_only_checks_are_not_counted(make_persona: Any) -> None:
    soft = make_persona(persona_id="soft", budget_toml="daily_usd = 0.0\nhard_cap = false\n")
    free = make_persona(persona_id="free")
    assert check(soft, 1.0)["decision"] == "warn"
    assert check(free, 1.0)["allowed"]
    assert refused.pending() == {}


def test_a_paused_persona_s_refusals_are_counted_under_paused(make_persona: Any) -> None:
    persona = make_persona(budget_toml="paused = true\n")
    answer = check(persona, 0.1)
    refused.flush()
    assert tally() == {("hermes/coder", "2026-03-10", "persona", answer["limit"]): 1}
    assert answer["limit"] == "paused"


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_writes_the_tally(make_persona: Any, settings: Any) -> None:
    settings.HAL0_REFUSED_FLUSH_S = 0.05
    persona = make_persona(budget_toml="daily_usd = 0.0\n")
    check(persona, 0.1)
    # Waits for the thread's batch (no page read, no explicit flush).
    done = threading.Event()
    for _ in range(200):
        if RefusedTally.objects.exists():
            done.set()
            break
        done.wait(0.05)
    assert done.is_set()
    assert tally() == {("hermes/coder", "2026-03-10", "persona", "daily"): 1}


def test_the_spend_and_persona_pages_show_refusals_with_their_limit(
    make_persona: Any, staff_client: Client
) -> None:
    from django.utils import timezone

    now = timezone.now()
    persona = make_persona(budget_toml="daily_usd = 0.0\n")
    other = make_persona(persona_id="other", budget_toml="per_call_max_usd = 0.01\n")
    for _ in range(3):
        check(persona, 0.1, now)
    check(other, 0.1, now)
    day = now.date().isoformat()  # UTC personas
    spend = staff_client.get("/admin/spend/?range=7d").content.decode()
    section = spend[spend.index('id="hal0-refused"') :]
    assert f'data-refused="hermes/coder {day} daily"' in section
    row = section[section.index(f'data-refused="hermes/coder {day} daily"') :]
    assert '<td class="num">3</td>' in row[: row.index("</tr>")]
    assert f'data-refused="hermes/other {day} per_call"' in section
    page = staff_client.get(f"/admin/personas/persona/{persona.pk}/change/?range=7d")
    body = page.content.decode()
    mine = body[body.index('id="hal0-refused"') :]
    assert f'data-refused="hermes/coder {day} daily"' in mine
    assert "hermes/other" not in mine[: mine.index("</table>")]
