"""``manage.py bench``: check and charge latency, throughput and a scan baseline.

Builds ledgers of the given sizes for one persona on throwaway databases (a temporary
SQLite file; a PostgreSQL database created and dropped on the server of
``--database-url`` / ``DATABASE_URL``), measures, and writes the tables into
``docs/benchmarks.md``. See that file for what each figure means.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.bench import http, report, runner
from budgets.bench.child import Config
from budgets.bench.databases import is_postgres_url


@dataclass(frozen=True)
class Preset:
    sizes: tuple[int, ...]
    runs: int
    samples: int
    duration: float
    scan_seconds: float


FULL = Preset((1_000, 100_000, 1_000_000), runs=3, samples=1_000, duration=10, scan_seconds=10)
# A smoke test: small ledgers, one short run.
QUICK = Preset((200, 2_000), runs=1, samples=50, duration=1, scan_seconds=0.5)
DATABASES = ("sqlite", "postgresql")
# The API is CPU-bound: one sync worker per CPU serves the most checks; more only queue
# for the CPUs (and, on SQLite, for the write lock).
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parse_size(text: str) -> int:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not found:
        raise ValueError(f"not a size: {text!r} (use e.g. 1000, 100k, 1M)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[found.group(2).lower()]
    value = int(float(found.group(1)) * scale)
    if value < 1:
        raise ValueError("sizes must be at least 1")
    return value


def masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Command(BaseCommand):
    help = "Measure check/charge latency and throughput on throwaway databases; write the table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", help="ledger sizes, e.g. 1k,100k,1M (default 1k,100k,1M)")
        parser.add_argument("--runs", type=int, help="runs per size; figures are medians (3)")
        parser.add_argument("--samples", type=int, help="latency samples per series (1000)")
        parser.add_argument(
            "--quick", action="store_true", help="a smoke test: ledgers of 200 and 2k, one run"
        )
        parser.add_argument(
            "--output",
            help="markdown file to write the results into (docs/benchmarks.md; with --quick "
            "var/bench-quick.md, so a smoke test never rewrites the published figures)",
        )
        parser.add_argument("--skip-http", action="store_true", help="service calls only")
        parser.add_argument(
            "--database-url",
            help="a PostgreSQL server to create a throwaway database on "
            "(default: DATABASE_URL when it is PostgreSQL)",
        )
        parser.add_argument(
            "--databases",
            help="comma-separated: sqlite, postgresql (default: sqlite, plus postgresql when "
            "a PostgreSQL URL is known)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=CPUS,
            help=f"gunicorn sync workers (one per CPU: {CPUS})",
        )
        parser.add_argument(
            "--connections", type=int, default=8, help="concurrent clients for throughput (8)"
        )
        parser.add_argument("--duration", type=float, help="seconds per throughput figure (10)")
        parser.add_argument(
            "--scan-seconds",
            type=float,
            help="time to spend on scan baseline samples per size and run (10)",
        )
        parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
        parser.add_argument("--note", default="", help="a sentence to print under the machine")

    def handle(self, *args: Any, **options: Any) -> None:
        preset = QUICK if options["quick"] else FULL
        try:
            sizes = sorted(
                {parse_size(s) for s in (options["sizes"] or "").split(",") if s.strip()}
                or set(preset.sizes)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        runs = options["runs"] or preset.runs
        samples = options["samples"] or preset.samples
        duration = options["duration"] or preset.duration
        scan_seconds = options["scan_seconds"] or preset.scan_seconds
        if min(runs, samples, options["workers"], options["connections"]) < 1:
            raise CommandError("--runs, --samples, --workers and --connections must be >= 1")

        postgres_url = options["database_url"] or (
            os.environ.get("DATABASE_URL")
            if is_postgres_url(os.environ.get("DATABASE_URL"))
            else None
        )
        if options["database_url"] and not is_postgres_url(options["database_url"]):
            raise CommandError("--database-url must be a postgres:// URL")
        if options["databases"]:
            databases = [d.strip() for d in options["databases"].split(",") if d.strip()]
            unknown = set(databases) - set(DATABASES)
            if unknown:
                raise CommandError(f"unknown database(s): {', '.join(sorted(unknown))}")
            if "postgresql" in databases and not postgres_url:
                raise CommandError("postgresql needs --database-url or DATABASE_URL")
        else:
            databases = ["sqlite"] + (["postgresql"] if postgres_url else [])
        tool = options["load_generator"]
        if tool == "wrk" and not http.wrk_available():
            raise CommandError("wrk is not installed (Debian: apt-get install wrk)")
        if tool == "auto":
            tool = "wrk" if http.wrk_available() else "python"

        command = [".venv/bin/python", "manage.py", "bench", "--sizes", ",".join(map(str, sizes))]
        command += ["--runs", str(runs), "--samples", str(samples)]
        command += ["--databases", ",".join(databases)]
        if postgres_url and "postgresql" in databases:
            command += ["--database-url", masked(postgres_url)]
        if options["skip_http"]:
            command.append("--skip-http")
        else:
            command += ["--workers", str(options["workers"])]
            command += ["--connections", str(options["connections"])]
            command += ["--duration", f"{duration:g}", "--load-generator", tool]
        command += ["--scan-seconds", f"{scan_seconds:g}"]

        started = dt.datetime.now(dt.UTC)
        load_before = os.getloadavg()[0]
        configs = [
            Config(
                database=db,
                sizes=sizes,
                runs=runs,
                samples=samples,
                scan_seconds=scan_seconds,
                skip_http=options["skip_http"],
                workers=options["workers"],
                connections=options["connections"],
                duration=duration,
                load_tool=tool,
                log_dir="",
            )
            for db in databases
        ]
        try:
            results = runner.run(configs, postgres_url=postgres_url, say=self.stdout.write)
        except runner.BenchFailed as exc:
            raise CommandError(str(exc)) from exc
        meta = report.Meta(
            command=shlex.join(command),
            started=started,
            machine=report.machine_description(load_before, os.getloadavg()[0]),
            workers=options["workers"],
            connections=options["connections"],
            duration=duration,
            load_tool=tool,
            runs=runs,
            samples=samples,
            skip_http=options["skip_http"],
            note=options["note"],
        )
        block = report.render(results, meta)
        output = Path(options["output"]) if options["output"] else _default_output(preset)
        output.parent.mkdir(parents=True, exist_ok=True)
        report.write(output, block)
        targets = block.partition("### Targets (issue 5)")[2].partition("\n### ")[0]
        self.stdout.write(targets.strip())
        self.stdout.write(f"wrote {output}")


def _default_output(preset: Preset) -> Path:
    if preset is QUICK:
        return Path(settings.VAR_DIR) / "bench-quick.md"
    return Path(settings.BASE_DIR) / "docs" / "benchmarks.md"
