"""``manage.py bench``: its building blocks at tiny sizes, for real; no timing is asserted.

The ledger builder goes through the one charge writer (rows and mirror lines), the scan
baseline must reach the same window totals as the counters behind ``budget_state``, and
the command itself, run with ``--quick --skip-http``, writes a table on a throwaway
database without touching the test's own database or data folder.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from budgets.bench import report
from budgets.bench.ledger import DAYS, grow_ledger, setup_persona
from budgets.bench.scan import scan_check, scan_window_spend
from budgets.bench.stats import percentile
from budgets.ledger.mirror import mirror_path
from budgets.management.commands.bench import parse_size
from budgets.models import Charge
from budgets.services import budget_charge, budget_check, budget_state
from budgets.services.windows import windows_at
from hal0.money import to_nanos, usd_number
from personas.models import Persona

Committing = Callable[..., AbstractContextManager[list[Callable[[], None]]]]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture
def bench_persona(db: None, data_dir: Path) -> Persona:
    return setup_persona()


def test_the_bench_persona_has_a_cap_on_every_window_in_a_zone_that_is_not_utc(
    bench_persona: Persona,
) -> None:
    state = budget_state(persona=bench_persona)

    assert set(state["remaining"]) == {"daily_usd", "monthly_usd", "lifetime_usd"}
    assert state["budget"]["timezone"] == "Europe/Berlin"
    assert state["budget"]["per_call_max_usd"] == 10


def test_the_ledger_builder_makes_n_rows_and_n_mirror_lines_spread_over_90_days(
    bench_persona: Persona, django_capture_on_commit_callbacks: Committing
) -> None:
    now = dt.datetime.now(dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        growth = grow_ledger(bench_persona, 250, now=now, chunk=100)

    charges = Charge.objects.filter(persona=bench_persona)
    assert (growth.added, growth.total) == (250, 250)
    assert charges.count() == 250
    assert set(charges.values_list("source", flat=True)) == {Charge.Source.BENCH}
    assert charges.values("request_id").distinct().count() == 250
    oldest = min(charges.values_list("ts", flat=True))
    assert now - dt.timedelta(days=DAYS) <= oldest
    assert max(charges.values_list("ts", flat=True)) <= now
    # spread, not bunched: charges land on many different days
    assert len({ts.date() for ts in charges.values_list("ts", flat=True)}) > 30
    assert len(_lines(mirror_path(bench_persona.agent_id, bench_persona.slug))) == 250


def test_the_ledger_builder_only_adds_what_is_missing_and_never_removes(
    bench_persona: Persona, django_capture_on_commit_callbacks: Committing
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        grow_ledger(bench_persona, 120)
        more = grow_ledger(bench_persona, 200)
        none = grow_ledger(bench_persona, 50)

    assert (more.added, more.total) == (80, 200)
    assert (none.added, none.total) == (0, 200)
    assert Charge.objects.filter(persona=bench_persona).count() == 200
    assert len(_lines(mirror_path(bench_persona.agent_id, bench_persona.slug))) == 200


def test_the_scan_baseline_computes_the_same_window_totals_as_budget_state(
    bench_persona: Persona, django_capture_on_commit_callbacks: Committing
) -> None:
    now = dt.datetime.now(dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        grow_ledger(bench_persona, 400, now=now - dt.timedelta(minutes=5), seed=7)
        # A few charges through the API's own service, so today's window is never empty.
        for n in range(3):
            budget_charge(
                persona=bench_persona,
                surface="s",
                model="m",
                cost_nanos=to_nanos(0.25),
                request_id=f"today-{n}",
                now=now - dt.timedelta(seconds=n),
            )

    scanned = scan_window_spend(
        mirror_path(bench_persona.agent_id, bench_persona.slug),
        windows_at(bench_persona.effective_timezone, now),
    )
    spend = budget_state(persona=bench_persona, now=now)["spend"]

    assert scanned.day >= to_nanos(0.75)
    assert scanned.lifetime > scanned.month >= scanned.day
    assert spend == {
        "today_usd": usd_number(scanned.day),
        "mtd_usd": usd_number(scanned.month),
        "lifetime_usd": usd_number(scanned.lifetime),
    }


def test_the_scan_baseline_decides_as_the_real_check_does(
    bench_persona: Persona, django_capture_on_commit_callbacks: Committing
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        grow_ledger(bench_persona, 100)
    now = dt.datetime.now(dt.UTC)

    for estimate in (to_nanos(0.01), to_nanos(11)):  # allowed; over the per-call cap
        ours = budget_check(persona=bench_persona, estimate_nanos=estimate, now=now)
        verdict = scan_check(bench_persona, estimate, now)
        assert (verdict.allowed, verdict.decision, verdict.limit) == (
            ours["allowed"],
            ours["decision"],
            ours["limit"],
        )
        assert {k: usd_number(v) for k, v in verdict.remaining.items()} == ours["remaining_usd"]


def test_percentiles_interpolate_between_ranks() -> None:
    samples = [float(n) for n in range(1, 101)]

    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0


@pytest.mark.parametrize(
    ("text", "size"), [("1000", 1_000), ("100k", 100_000), ("1M", 1_000_000), ("2.5k", 2_500)]
)
def test_sizes_may_be_written_with_k_and_m(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_writing_the_report_replaces_only_the_block_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"# Benchmarks\n\nHow to run it.\n\n{report.BEGIN}\nold\n{report.END}\n\nNotes.\n"
    )

    report.write(doc, f"{report.BEGIN}\nnew figures\n{report.END}\n")

    assert doc.read_text() == (
        f"# Benchmarks\n\nHow to run it.\n\n{report.BEGIN}\nnew figures\n{report.END}\n\nNotes.\n"
    )


def test_the_command_refuses_a_database_url_that_is_not_postgres(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="postgres"):
        call_command(
            "bench", "--database-url", "sqlite:///x.sqlite3", "--output", str(tmp_path / "b.md")
        )


@pytest.mark.django_db
def test_bench_quick_skip_http_writes_a_table_from_a_throwaway_database(
    tmp_path: Path, data_dir: Path
) -> None:
    output = tmp_path / "benchmarks.md"

    call_command(
        "bench",
        "--quick",
        "--skip-http",
        "--databases",
        "sqlite",
        "--sizes",
        "40,120",
        "--samples",
        "5",
        "--scan-seconds",
        "0.05",
        "--output",
        str(output),
    )

    text = output.read_text()
    assert text.startswith("# Benchmarks\n")
    assert report.BEGIN in text
    assert report.END in text
    assert "--sizes 40,120 --runs 1 --samples 5 --databases sqlite --skip-http" in text
    for table in (
        "### Targets (issue 5)",
        "### Latency, p50 / p99",
        "### Priced check",
        "### Events and metrics on and off",
        "### Spend report",
        "### Caps at three scopes",
        "### Runs: check and charge with a run_id",
        "### Scan baseline",
    ):
        assert table in text
    assert "in-process check p50, caps at three scopes ÷ persona caps only ≤ 1.2" in text
    assert "90-day spend report by day and model p50 ≤ 50 ms" in text
    assert "the same report in Europe/Berlin p50 ≤ 50 ms" in text
    assert "| Europe/Berlin days |" in text
    # one statement a check with persona caps only, and still one with the agent's and
    # the platform's (their spend rides along), counted at both sizes
    assert text.count("| 1 → 1 |") == 2
    assert "in-process priced check p50 ÷ plain check p50 ≤ 1.2" in text
    assert "in-process charge p50 with events and metrics ÷ without ≤ 1.1" in text
    assert "| SQLite | 40 |" in text
    assert "| SQLite | 120 |" in text
    # the scan baseline saw exactly what the counters hold
    assert "| no |" not in text
    assert "**no**" not in text
    assert "(HTTP)" not in text
    # the run used its own database and data folder, not the test's
    assert Charge.objects.count() == 0
    assert not (data_dir / "agents" / "bench").exists()


@pytest.mark.django_db
def test_bench_quick_writes_under_var_and_leaves_the_published_figures_alone(
    tmp_path: Path, data_dir: Path, settings: Any
) -> None:
    settings.VAR_DIR = tmp_path / "var"
    published = Path(settings.BASE_DIR) / "docs" / "benchmarks.md"
    before = published.read_bytes()
    out = io.StringIO()

    call_command(
        "bench",
        "--quick",
        "--skip-http",
        "--databases",
        "sqlite",
        "--sizes",
        "40",
        "--samples",
        "5",
        "--scan-seconds",
        "0.05",
        stdout=out,
    )

    written = tmp_path / "var" / "bench-quick.md"
    assert written.read_text().startswith("# Benchmarks\n")
    assert f"wrote {written}" in out.getvalue()
    assert published.read_bytes() == before


def test_the_events_off_side_of_the_pair_writes_no_event_and_the_on_side_does(
    make_persona: Callable[..., Any],
) -> None:
    """The A/B compares something real: "off" really skips the event hook (a charge that
    crosses warn_at writes no event), and the hook is back afterwards (the next one does)."""
    from budgets.bench.events_ab import _events_off
    from budgets.events.models import Event

    persona = make_persona(persona_id="coder", budget_toml="daily_usd = 1.0\n")

    def charge(rid: str) -> None:
        budget_charge(
            persona=persona, surface="s", model="m", cost_nanos=to_nanos(0.45), request_id=rid
        )

    with _events_off():
        charge("r1")
        charge("r2")  # 0.9 of the cap, past warn_at: no event with the hook off
    assert not Event.objects.exists()
    charge("r3")  # now over the cap, hook back on
    assert set(Event.objects.values_list("type", flat=True)) >= {"budget.warn"}


def test_the_bench_switches_agent_and_platform_caps_through_the_one_writer(
    bench_persona: Persona,
) -> None:
    from budgets.bench import inprocess
    from budgets.bench.scopes import set_scope_caps
    from budgets.services.scopes import budgets_above
    from personas.models import BudgetChange

    def statements() -> int:
        def check() -> object:
            return inprocess.check(bench_persona.agent_id, bench_persona.slug)

        # The first checks build the counters and take in the files' new signatures, as
        # the bench's warm-up calls after each switch do.
        check()
        check()
        return inprocess.statements(check)

    def capped() -> list[bool]:
        return [b.has_window_caps for b in budgets_above(bench_persona.agent_id)]

    assert (statements(), capped()) == (1, [False, False])
    set_scope_caps(bench_persona.agent_id, on=True)
    # The agent's and the platform's spend ride along the persona's one statement.
    assert (statements(), capped()) == (1, [True, True])
    set_scope_caps(bench_persona.agent_id, on=False)
    assert (statements(), capped()) == (1, [False, False])
    audited = BudgetChange.objects.filter(actor="bench", scope__in=["agent", "platform"])
    assert audited.count() == 4


def test_the_run_pairs_charge_the_run_and_the_persona_alike(
    bench_persona: Persona, django_capture_on_commit_callbacks: Committing
) -> None:
    from budgets.bench import inprocess
    from budgets.bench.scopes import setup_run
    from budgets.runs.services import run_get

    run_id = setup_run(bench_persona.agent_id, bench_persona.slug)
    with django_capture_on_commit_callbacks(execute=True):
        timings = inprocess.run_pairs(bench_persona.agent_id, bench_persona.slug, run_id, 3)

    assert {name: len(series) for name, series in timings.items()} == {
        "check": 3,
        "check_run": 3,
        "charge": 3,
        "charge_run": 3,
    }
    calls = inprocess.WARMUP + 3
    assert Charge.objects.filter(persona=bench_persona).count() == 2 * calls
    run = run_get(persona=bench_persona, run_id=run_id)
    assert run["spent"]["usd"] == usd_number(calls * inprocess.COST)
