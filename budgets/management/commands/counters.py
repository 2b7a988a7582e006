"""``manage.py counters reconcile [--fix]``: re-sum the window counters and the report
rollups from the charges."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.reports import rollups
from budgets.services.counters import reconcile


class Command(BaseCommand):
    help = "Compare the per-window spend counters and the report rollups with the charges."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["reconcile"])
        parser.add_argument(
            "--fix", action="store_true", help="correct the counters and rollups that drifted"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fix = options["fix"]
        checked, drifts = reconcile(fix=fix)
        for drift in drifts:
            self.stdout.write(("fixed " if fix else "drift ") + drift.describe())
        self.stdout.write(f"checked {checked} counters, {len(drifts)} drifted")
        rolled, rollup_drifts = rollups.reconcile(fix=fix)
        for rd in rollup_drifts:
            self.stdout.write(("fixed " if fix else "drift ") + rd.describe())
        self.stdout.write(f"checked {rolled} rollups, {len(rollup_drifts)} drifted")
        if (drifts or rollup_drifts) and not fix:
            raise CommandError(
                "counters or rollups drifted from the charges; run with --fix to correct"
            )
