"""``manage.py counters reconcile [--fix]``: re-sum window counters from the charges."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.services.counters import reconcile


class Command(BaseCommand):
    help = "Compare the per-window spend counters with the charges they cache."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["reconcile"])
        parser.add_argument("--fix", action="store_true", help="correct the counters that drifted")

    def handle(self, *args: Any, **options: Any) -> None:
        checked, drifts = reconcile(fix=options["fix"])
        for drift in drifts:
            self.stdout.write(("fixed " if options["fix"] else "drift ") + drift.describe())
        self.stdout.write(f"checked {checked} counters, {len(drifts)} drifted")
        if drifts and not options["fix"]:
            raise CommandError("counters drifted from the charges; run with --fix to correct")
