"""The results as markdown: medians over runs, the targets of issue 5, the machine.

``render`` turns the raw figures of every database into the block that ``write`` puts
between the ``bench:results`` markers of ``docs/benchmarks.md``; the text around the
markers (how to run it, what the figures mean) is left as it is.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgets.bench.stats import median

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"
TITLE = "# Benchmarks\n\n"

LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Meta:
    command: str
    started: dt.datetime
    machine: str
    workers: int
    connections: int
    duration: float
    load_tool: str
    runs: int
    samples: int
    skip_http: bool
    note: str = ""


# ---------------------------------------------------------------------------------------
# Formatting


def fmt_time(us: float) -> str:
    if math.isnan(us):
        return "n/a"
    if us < 1_000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1_000:.2f} ms"
    return f"{us / 1_000_000:.2f} s"


def fmt_rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def fmt_rows(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size:,}{unit}"
    return f"{n:,}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Medians over runs


def _runs_median(entry: dict[str, Any], pick: Callable[[dict[str, Any]], float]) -> float:
    values = []
    for run in entry["runs"]:
        try:
            values.append(float(pick(run)))
        except (KeyError, TypeError):
            continue
    return median(values)


def _lat(entry: dict[str, Any], where: str, kind: str) -> tuple[float, float]:
    return (
        _runs_median(entry, lambda r: r[where][kind]["p50_us"]),
        _runs_median(entry, lambda r: r[where][kind]["p99_us"]),
    )


def _pair(entry: dict[str, Any], where: str, kind: str) -> str:
    p50, p99 = _lat(entry, where, kind)
    return f"{fmt_time(p50)} / {fmt_time(p99)}"


def _rss_mib(entry: dict[str, Any]) -> float:
    peaks = [max(r["http"]["rss_kib"]) for r in entry["runs"] if r.get("http", {}).get("rss_kib")]
    return max(peaks) / 1024 if peaks else math.nan


def _failed(entry: dict[str, Any]) -> int:
    total = 0
    for run in entry["runs"]:
        for kind in ("check_throughput", "charge_throughput"):
            total += int(run.get("http", {}).get(kind, {}).get("failed", 0))
    return total


# ---------------------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    higher_is_better: bool
    fmt: Callable[[float], str]
    measure: Callable[[list[dict[str, Any]]], float]

    def verdict(self, value: float) -> str:
        if math.isnan(value):
            return "n/a"
        ok = value >= self.limit if self.higher_is_better else value <= self.limit
        return f"{self.fmt(value)} {'✅' if ok else '❌'}"


def _largest(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    return max(sizes, key=lambda e: e["size"])


def _smallest(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    return min(sizes, key=lambda e: e["size"])


def _flat(sizes: list[dict[str, Any]], where: str) -> float:
    if len(sizes) < 2:
        return math.nan
    return _lat(_largest(sizes), where, "check")[0] / _lat(_smallest(sizes), where, "check")[0]


def _at(size: int, sizes: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float]) -> float:
    for entry in sizes:
        if entry["size"] == size:
            return pick(entry)
    return math.nan


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _times(value: float) -> str:
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


def _priced(entry: dict[str, Any], where: str) -> float:
    """Priced check p50 ÷ plain check p50, measured alternating: what sending tokens
    instead of dollars costs."""
    return _lat(entry, where, "check_priced")[0] / _lat(entry, where, "check_paired")[0]


def _ab(entry: dict[str, Any], series: str) -> float:
    """p50 of one series of the events on/off pair (in-process), median over runs."""
    return _runs_median(entry, lambda r: r["inprocess"]["events_ab"][series]["p50_us"])


def _events(entry: dict[str, Any], call: str) -> float:
    """p50 with events and metrics ÷ p50 without, measured alternating (in-process)."""
    return _ab(entry, f"{call}_on") / _ab(entry, f"{call}_off")


def _scopes(entry: dict[str, Any], where: str, call: str = "check") -> float:
    """p50 with caps at three scopes ÷ p50 with persona caps only, measured in
    alternating blocks."""
    return _lat(entry, where, f"{call}_scopes")[0] / _lat(entry, where, f"{call}_persona")[0]


def _run(entry: dict[str, Any], where: str, series: str) -> float:
    """p50 of one series of the run_id pairs, median over runs."""
    return _runs_median(entry, lambda r: r[where]["runs"][series]["p50_us"])


def _statements(entry: dict[str, Any], which: str) -> str:
    counts = {r["inprocess"].get("statements", {}).get(which) for r in entry["runs"]} - {None}
    return "/".join(str(c) for c in sorted(counts)) or "n/a"


def _per_s(entry: dict[str, Any], kind: str) -> float:
    return _runs_median(entry, lambda r: r["http"][kind]["per_s"])


TARGETS = [
    Target(
        "HTTP check p50 at the largest ledger ≤ 1 ms",
        1_000,
        False,
        fmt_time,
        lambda s: _lat(_largest(s), "http", "check")[0],
    ),
    Target(
        "HTTP check p50, largest ÷ smallest ledger ≤ 1.2",
        1.2,
        False,
        _ratio,
        lambda s: _flat(s, "http"),
    ),
    Target(
        "in-process check p50, largest ÷ smallest ledger ≤ 1.2",
        1.2,
        False,
        _ratio,
        lambda s: _flat(s, "inprocess"),
    ),
    Target(
        "in-process check p50 ≤ 150 µs (worst ledger size)",
        150,
        False,
        fmt_time,
        lambda s: max(_lat(e, "inprocess", "check")[0] for e in s),
    ),
    Target(
        "HTTP priced check p50 ÷ plain check p50 ≤ 1.2 (worst ledger size)",
        1.2,
        False,
        _ratio,
        lambda s: max(_priced(e, "http") for e in s),
    ),
    Target(
        "in-process priced check p50 ÷ plain check p50 ≤ 1.2 (worst ledger size)",
        1.2,
        False,
        _ratio,
        lambda s: max(_priced(e, "inprocess") for e in s),
    ),
    Target(
        "in-process charge p50 with events and metrics ÷ without ≤ 1.1 (worst ledger size)",
        1.1,
        False,
        _ratio,
        lambda s: max(_events(e, "charge") for e in s),
    ),
    Target(
        "in-process check p50 with events and metrics ÷ without ≤ 1.1 (worst ledger size)",
        1.1,
        False,
        _ratio,
        lambda s: max(_events(e, "check") for e in s),
    ),
    Target(
        "in-process check p50, caps at three scopes ÷ persona caps only ≤ 1.2 (largest ledger)",
        1.2,
        False,
        _ratio,
        lambda s: _scopes(_largest(s), "inprocess"),
    ),
    Target(
        "HTTP check p50, caps at three scopes ÷ persona caps only ≤ 1.2 (largest ledger)",
        1.2,
        False,
        _ratio,
        lambda s: _scopes(_largest(s), "http"),
    ),
    Target(
        "checks/s over HTTP ≥ 2,000 (largest ledger)",
        2_000,
        True,
        fmt_rate,
        lambda s: _runs_median(_largest(s), lambda r: r["http"]["check_throughput"]["per_s"]),
    ),
    Target(
        "charges/s over HTTP ≥ 500 (largest ledger)",
        500,
        True,
        fmt_rate,
        lambda s: _runs_median(_largest(s), lambda r: r["http"]["charge_throughput"]["per_s"]),
    ),
    Target(
        "90-day spend report by day and model p50 ≤ 50 ms (largest ledger)",
        50_000,
        False,
        fmt_time,
        lambda s: _lat(_largest(s), "inprocess", "report")[0],
    ),
    Target(
        "the same report in Europe/Berlin p50 ≤ 50 ms (largest ledger)",
        50_000,
        False,
        fmt_time,
        lambda s: _lat(_largest(s), "inprocess", "report_whole_hour")[0],
    ),
    Target(
        "peak RSS per worker ≤ 100 MB",
        100,
        False,
        lambda v: f"{v:.0f} MiB",
        lambda s: max((_rss_mib(e) for e in s), default=math.nan),
    ),
    Target(
        "scan baseline ≥ 100x slower at 100k charges",
        100,
        True,
        _times,
        lambda s: _at(
            100_000, s, lambda e: _runs_median(e, lambda r: r["inprocess"]["scan"]["ratio"])
        ),
    ),
]


# ---------------------------------------------------------------------------------------
# The block


def render(results: list[dict[str, Any]], meta: Meta) -> str:
    dbs = [(LABELS.get(r["database"], r["database"]), r) for r in results]
    out = [BEGIN, "\n## Results\n\n"]
    out.append(f"Measured {meta.started:%Y-%m-%d %H:%M} UTC with\n\n```sh\n{meta.command}\n```\n\n")
    out.append(f"{meta.machine}\n\n")
    if meta.note:
        out.append(f"{meta.note}\n\n")
    out.append(
        f"Each figure is the median of {meta.runs} run(s); a run takes {meta.samples} samples "
        "of each latency, one client at a time. "
    )
    if not meta.skip_http:
        out.append(
            f"Throughput: gunicorn with {meta.workers} sync workers, {meta.connections} "
            f"concurrent connections from {meta.load_tool}, {meta.duration:g} s per figure. "
        )
    out.append("Database versions: " + ", ".join(f"{n} {r['server_version']}" for n, r in dbs))
    out.append(".\n\n### Targets (issue 5)\n\n")
    rows = [[t.name] + [t.verdict(t.measure(r["sizes"])) for _, r in dbs] for t in TARGETS]
    out.append(_table(["target", *[n for n, _ in dbs]], rows))

    out.append("\n### Latency, p50 / p99\n\n")
    header = [
        "database",
        "ledger",
        "check (service)",
        "check + reserve (service)",
        "charge (service)",
    ]
    if not meta.skip_http:
        header += ["check (HTTP)", "check + reserve (HTTP)", "charge (HTTP)"]
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            row += [_pair(e, "inprocess", k) for k in ("check", "check_reserve", "charge")]
            if not meta.skip_http:
                row += [_pair(e, "http", k) for k in ("check", "check_reserve", "charge")]
            rows.append(row)
    out.append(_table(header, rows))

    out.append(
        "\n### Priced check (tokens in, the service prices them) beside the plain one, p50\n\n"
        "Measured alternating, plain then priced, so both see the same machine.\n\n"
    )
    header = ["database", "ledger", "check (service)", "priced check (service)", "ratio"]
    if not meta.skip_http:
        header += ["check (HTTP)", "priced check (HTTP)", "ratio"]
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            wheres = ("inprocess",) if meta.skip_http else ("inprocess", "http")
            for where in wheres:
                row += [
                    fmt_time(_lat(e, where, "check_paired")[0]),
                    fmt_time(_lat(e, where, "check_priced")[0]),
                    _ratio(_priced(e, where)),
                ]
            rows.append(row)
    out.append(_table(header, rows))

    out.append(
        "\n### Events and metrics on and off (service), p50\n\n"
        "The same calls alternating: on, as the API makes them (the charge's event hook, the "
        "check and charge counters, the request-timing middleware); off, the event hooks "
        "replaced by no-ops and no metrics (budgets/bench/events_ab.py).\n\n"
    )
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            for call in ("check", "charge"):
                row += [
                    fmt_time(_ab(e, f"{call}_on")),
                    fmt_time(_ab(e, f"{call}_off")),
                    _ratio(_events(e, call)),
                ]
            rows.append(row)
    header = ["database", "ledger", "check on", "check off", "ratio"]
    out.append(_table([*header, "charge on", "charge off", "ratio"], rows))

    out.append(
        "\n### Spend report: 90 days by day and model, every persona (service), p50 / p99\n\n"
    )
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            row += [
                _pair(e, "inprocess", k)
                for k in ("report", "report_whole_hour", "report_half_hour")
            ]
            rows.append(row)
    out.append(
        _table(
            [
                "database",
                "ledger",
                "UTC days",
                "Europe/Berlin days",
                "Asia/Kolkata days (+05:30)",
            ],
            rows,
        )
    )

    out.append(
        "\n### Caps at three scopes (persona, agent.toml, platform.toml) beside persona caps "
        "only, p50\n\n"
        "Alternating blocks of 50 calls, the agent's and the platform's caps written between "
        "blocks (the platform's apply to every persona, so both cannot be on at once). "
        "Statements: what one check sends to the database in-process (over HTTP one more, "
        "the API key).\n\n"
    )
    header = ["database", "ledger", "check (service)", "three scopes", "ratio", "statements"]
    header += ["charge (service)", "three scopes", "ratio"]
    if not meta.skip_http:
        header += ["check (HTTP)", "three scopes", "ratio", "charges/s", "three scopes"]
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            row += [
                fmt_time(_lat(e, "inprocess", "check_persona")[0]),
                fmt_time(_lat(e, "inprocess", "check_scopes")[0]),
                _ratio(_scopes(e, "inprocess")),
                f"{_statements(e, 'persona')} → {_statements(e, 'scopes')}",
                fmt_time(_lat(e, "inprocess", "charge_persona")[0]),
                fmt_time(_lat(e, "inprocess", "charge_scopes")[0]),
                _ratio(_scopes(e, "inprocess", "charge")),
            ]
            if not meta.skip_http:
                row += [
                    fmt_time(_lat(e, "http", "check_persona")[0]),
                    fmt_time(_lat(e, "http", "check_scopes")[0]),
                    _ratio(_scopes(e, "http")),
                    fmt_rate(_per_s(e, "charge_throughput")),
                    fmt_rate(_per_s(e, "charge_throughput_scopes")),
                ]
            rows.append(row)
    out.append(_table(header, rows))

    out.append(
        "\n### Runs: check and charge with a run_id beside the same calls without, p50\n\n"
        "One persona (the charged one) with a run whose budgets no call reaches; the four "
        "calls alternate.\n\n"
    )
    header = ["database", "ledger"]
    wheres = ("inprocess",) if meta.skip_http else ("inprocess", "http")
    for where in wheres:
        how = "service" if where == "inprocess" else "HTTP"
        header += [f"check ({how})", "with run_id", "ratio", f"charge ({how})", "with run_id"]
        header += ["ratio"]
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            row = [name, fmt_rows(e["rows_at_start"])]
            for where in wheres:
                for call in ("check", "charge"):
                    plain, run = _run(e, where, call), _run(e, where, f"{call}_run")
                    row += [fmt_time(plain), fmt_time(run), _ratio(run / plain)]
            rows.append(row)
    out.append(_table(header, rows))

    if not meta.skip_http:
        out.append("\n### Throughput and memory over HTTP\n\n")
        rows = []
        for name, r in dbs:
            for e in r["sizes"]:
                rows.append(
                    [
                        name,
                        fmt_rows(e["rows_at_start"]),
                        fmt_rate(_runs_median(e, lambda x: x["http"]["check_throughput"]["per_s"])),
                        fmt_rate(
                            _runs_median(e, lambda x: x["http"]["charge_throughput"]["per_s"])
                        ),
                        str(_failed(e)),
                        f"{_rss_mib(e):.0f} MiB",
                    ]
                )
        out.append(
            _table(
                [
                    "database",
                    "ledger",
                    "checks/s",
                    "charges/s",
                    "failed requests",
                    "peak RSS/worker",
                ],
                rows,
            )
        )

    out.append("\n### Scan baseline (re-read the JSONL mirror on every check), side by side\n\n")
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            agree = all(run["inprocess"]["scan"]["agree"] for run in e["runs"])
            rows.append(
                [
                    name,
                    fmt_rows(e["rows_at_start"]),
                    fmt_time(_runs_median(e, lambda x: x["inprocess"]["scan"]["ours"]["p50_us"])),
                    fmt_time(_runs_median(e, lambda x: x["inprocess"]["scan"]["scan"]["p50_us"])),
                    _times(_runs_median(e, lambda x: x["inprocess"]["scan"]["ratio"])),
                    "yes" if agree else "**no**",
                ]
            )
    out.append(
        _table(
            ["database", "ledger", "our check p50", "scan check p50", "scan ÷ ours", "same totals"],
            rows,
        )
    )

    out.append(
        "\n### Loading the ledgers (the charge writer, JSONL mirror included)\n\n"
        "Measured charges go to a second persona of the same agent, into the same table, so "
        "the measured persona keeps exactly its ledger size.\n\n"
    )
    rows = []
    for name, r in dbs:
        for e in r["sizes"]:
            rate = e["added"] / e["build_s"] if e["build_s"] > 0 else math.nan
            rows.append(
                [
                    name,
                    fmt_rows(e["rows_at_start"]),
                    f"{e['added']:,}",
                    f"{e['build_s']:.1f} s",
                    fmt_rate(rate),
                    f"{e['mirror_lines_at_start']:,}",
                    fmt_time(e["cold_check_ms"] * 1_000),
                    f"{e['rows_at_end']:,}",
                    f"{e.get('table_rows_at_end', math.nan):,}",
                ]
            )
    out.append(
        _table(
            [
                "database",
                "ledger",
                "rows added",
                "load time",
                "rows/s",
                "mirror lines",
                "first check (counters rebuilt)",
                "its rows after the runs",
                "charges table after the runs",
            ],
            rows,
        )
    )
    out.append(f"\n{END}\n")
    return "".join(out)


def write(path: Path, block: str) -> None:
    """Replace the block between the markers, or start the file with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + block.rstrip("\n") + tail
    elif text:
        new = text.rstrip("\n") + "\n\n" + block
    else:
        new = TITLE + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


# ---------------------------------------------------------------------------------------
# The machine


def _first(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "?"


def wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    # "wrk 4.1.0 [epoll] ..." upstream, "wrk debian/4.1.0-3+b2 [epoll] ..." on Debian
    found = re.search(r"wrk (?:\w+/)?([\w.~+-]+)", done.stdout + done.stderr)
    return found.group(1) if found else "?"


def machine_description(load_before: float, load_after: float) -> str:
    cpuinfo = _read("/proc/cpuinfo")
    model = _first(r"^model name\s*:\s*(.+)$", cpuinfo) or platform.processor() or "unknown CPU"
    mhz = _first(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_kib = _first(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"))
    system = _first(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release")) or platform.system()
    parts = [f"{model}" + (f" ({float(mhz):.0f} MHz)" if mhz else ""), f"{cores} CPUs"]
    if mem_kib:
        parts.append(f"{int(mem_kib) / 1024 / 1024:.1f} GiB RAM")
    parts.append(f"{system}, Linux {platform.release()}")
    wrk = wrk_version()
    software = [
        f"Python {platform.python_version()}",
        f"Django {_version('django')}",
        f"DRF {_version('djangorestframework')}",
        f"gunicorn {_version('gunicorn')}",
        f"psycopg {_version('psycopg')}",
        f"wrk {wrk}" if wrk else "no wrk (Python load client)",
    ]
    return (
        "Machine: "
        + ", ".join(parts)
        + ". Software: "
        + ", ".join(software)
        + f". Load average (1 min) before / after the run: {load_before:.2f} / {load_after:.2f}."
    )
