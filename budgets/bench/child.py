"""One database's bench run, in its own process: ``python -m budgets.bench.child CONFIG OUT``.

``manage.py bench`` starts this with an environment that points Django at a throwaway
database and data folder (``DATABASE_URL``, ``HAL0_DATA_DIR``, ``HAL0_VAR_DIR``), so the
settings, the services and the gunicorn it starts all see only those. CONFIG and OUT are
JSON files: what to measure, and the raw figures of every run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Config:
    database: str  # "sqlite" | "postgresql"
    sizes: list[int]
    runs: int
    samples: int
    scan_seconds: float
    skip_http: bool
    workers: int
    connections: int
    duration: float
    load_tool: str
    log_dir: str
    seed: int = 0


def _say(config: Config, message: str) -> None:
    print(f"[{config.database}] {message}", file=sys.stderr, flush=True)


def _mirror_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def _scan_rounds(config: Config, agent_id: str, persona_id: str) -> int:
    from budgets.bench import inprocess

    _, scan = inprocess.side_by_side(agent_id, persona_id, 1)
    return max(3, min(200, math.floor(config.scan_seconds / max(scan[0], 1e-6))))


def _inprocess_run(
    config: Config, agent_id: str, persona_id: str, charge_persona_id: str, rounds: int
) -> dict[str, Any]:
    from budgets.bench import events_ab, inprocess
    from budgets.bench.scan import scan_window_spend
    from budgets.bench.scopes import RUN_ID
    from budgets.bench.stats import latency, median
    from budgets.ledger.mirror import mirror_path
    from budgets.services.counters import window_spend
    from budgets.services.windows import windows_at
    from personas.services import find_persona

    out: dict[str, Any] = {}
    for kind in ("check", "check_reserve"):
        out[kind] = latency(inprocess.measure(kind, agent_id, persona_id, config.samples))
    plain, priced = inprocess.priced_pair(agent_id, persona_id, config.samples)
    out["check_paired"], out["check_priced"] = latency(plain), latency(priced)
    out["charge"] = latency(
        inprocess.measure("charge", agent_id, charge_persona_id, config.samples)
    )
    # Events and metrics on and off, alternating (budgets/bench/events_ab.py).
    ab = events_ab.pair(agent_id, persona_id, charge_persona_id, config.samples)
    out["events_ab"] = {name: latency(series) for name, series in ab.items()}
    # A report takes milliseconds: a tenth of the samples says as much about its median.
    report_samples = max(20, config.samples // 10)
    for kind in ("report", "report_whole_hour", "report_half_hour"):
        out[kind] = latency(inprocess.measure(kind, agent_id, persona_id, report_samples))
    scoped = inprocess.scoped_blocks(agent_id, persona_id, charge_persona_id, config.samples)
    for name in ("check_persona", "check_scopes", "charge_persona", "charge_scopes"):
        out[name] = latency(scoped[name])
    out["statements"] = {k: scoped[f"statements_{k}"] for k in ("persona", "scopes")}
    runs = inprocess.run_pairs(agent_id, charge_persona_id, RUN_ID, config.samples)
    out["runs"] = {name: latency(series) for name, series in runs.items()}
    ours, scan = inprocess.side_by_side(agent_id, persona_id, rounds)
    persona = find_persona(agent_id, persona_id)
    now = dt.datetime.now(dt.UTC)
    w = windows_at(persona.effective_timezone, now)
    counted = window_spend(persona, w)
    scanned = scan_window_spend(mirror_path(agent_id, persona_id), w)
    out["scan"] = {
        "ours": latency(ours),
        "scan": latency(scan),
        "ratio": median(scan) / median(ours),
        # The scan sums money only: compared on that.
        "agree": (counted.day, counted.month, counted.lifetime)
        == (scanned.day, scanned.month, scanned.lifetime),
    }
    return out


def _http_run(
    config: Config, key: str, agent_id: str, persona_id: str, charge_persona_id: str
) -> dict[str, Any]:
    from budgets.bench import http
    from budgets.bench.scopes import RUN_ID, set_scope_caps
    from budgets.bench.stats import latency

    out: dict[str, Any] = {}
    with http.serving(config.workers, Path(config.log_dir)) as server:
        api = http.Api(
            port=server.port,
            key=key,
            agent_id=agent_id,
            persona_id=persona_id,
            charge_persona_id=charge_persona_id,
        )
        # A worker's first requests build URL resolvers, caches and its database
        # connection; give each worker a few before timing.
        for _ in range(10 * config.workers):
            http.call(api, "POST", f"{api.base}/check", http.CHECK_BODY)
        for kind in ("check", "check_reserve", "charge"):
            out[kind] = latency(http.measure(api, kind, config.samples))
        plain, priced = http.priced_pair(api, config.samples)
        out["check_paired"], out["check_priced"] = latency(plain), latency(priced)
        for kind in ("check", "charge"):
            result = http.throughput(
                api,
                kind,
                seconds=config.duration,
                connections=config.connections,
                tool=config.load_tool,
            )
            out[f"{kind}_throughput"] = asdict(result)

        def set_caps(on: bool) -> None:
            set_scope_caps(agent_id, on=on)

        scoped = http.scoped_blocks(api, config.samples, set_caps, workers=config.workers)
        out["check_persona"] = latency(scoped["check_persona"])
        out["check_scopes"] = latency(scoped["check_scopes"])
        # Charges/s with caps at the agent and the platform, right after the same figure
        # without them (above).
        set_caps(True)
        try:
            result = http.throughput(
                api,
                "charge",
                seconds=config.duration,
                connections=config.connections,
                tool=config.load_tool,
            )
        finally:
            set_caps(False)
        out["charge_throughput_scopes"] = asdict(result)
        runs = http.run_pairs(api, RUN_ID, config.samples)
        out["runs"] = {name: latency(series) for name, series in runs.items()}
        out["rss_kib"] = server.peak_rss_kib()
    return out


def run(config: Config) -> dict[str, Any]:
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)

    from budgets.apikeys import create_key
    from budgets.bench import inprocess
    from budgets.bench.ledger import CHARGE_PERSONA_ID, grow_ledger, setup_persona
    from budgets.bench.scopes import setup_run
    from budgets.ledger.mirror import mirror_path
    from budgets.models import Charge

    persona = setup_persona()
    agent_id, persona_id = persona.agent_id, persona.slug
    charge_persona_id = setup_persona(agent_id, CHARGE_PERSONA_ID).slug
    setup_run(agent_id, charge_persona_id)
    key = create_key(scope="agent", agent_id=agent_id, name="bench")[1]
    # As a served worker does once it has loaded (hal0/wsgi.py): what is alive now is
    # taken out of the garbage collector's sight, so in-process calls are measured as the
    # service runs them.
    from hal0.wsgi import settle

    settle()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version"
        )
        server_version = str(cursor.fetchone()[0])
    results: dict[str, Any] = {
        "database": config.database,
        "server_version": server_version,
        "sizes": [],
    }
    for size in sorted(config.sizes):
        growth = grow_ledger(persona, size, seed=config.seed)
        _say(config, f"ledger {growth.total:,} rows (+{growth.added:,} in {growth.seconds:.1f} s)")
        started = time.perf_counter()
        inprocess.check(agent_id, persona_id)  # rebuilds the counters the bulk load dropped
        cold = time.perf_counter() - started
        entry: dict[str, Any] = {
            "size": size,
            "rows_at_start": growth.total,
            "added": growth.added,
            "build_s": growth.seconds,
            "mirror_lines_at_start": _mirror_lines(mirror_path(agent_id, persona_id)),
            "cold_check_ms": cold * 1e3,
            "runs": [],
        }
        rounds = _scan_rounds(config, agent_id, persona_id)
        for number in range(1, config.runs + 1):
            run_out: dict[str, Any] = {
                "inprocess": _inprocess_run(config, agent_id, persona_id, charge_persona_id, rounds)
            }
            if not config.skip_http:
                run_out["http"] = _http_run(config, key, agent_id, persona_id, charge_persona_id)
            entry["runs"].append(run_out)
            _say(config, f"{size:,}: run {number}/{config.runs} done")
        # The measured persona's ledger is still exactly the size; the table has grown by
        # the charges measured on the other persona.
        entry["rows_at_end"] = Charge.objects.filter(persona=persona).count()
        entry["table_rows_at_end"] = Charge.objects.count()
        entry["mirror_lines_at_end"] = _mirror_lines(mirror_path(agent_id, persona_id))
        results["sizes"].append(entry)
    return results


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")
    config = Config(**json.loads(Path(argv[1]).read_text()))
    results = run(config)
    Path(argv[2]).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
