"""``manage.py bench_refused``: the added cost of the refused-check tally (A/B)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Time refused checks with the refused-check tally on and off, alternating."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--samples", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        from budgets.bench import refused
        from budgets.bench.stats import percentile
        from budgets.models import RefusedTally

        refused.setup()
        before = sum(RefusedTally.objects.values_list("count", flat=True))
        result = refused.pair(options["samples"])
        after = sum(RefusedTally.objects.values_list("count", flat=True))
        for name in ("off", "on"):
            samples = result[name]
            self.stdout.write(
                f"tally {name:3}: p50 {percentile(samples, 50) * 1e6:7.1f} us  "
                f"p99 {percentile(samples, 99) * 1e6:7.1f} us  (n={len(samples)})"
            )
        p50 = percentile(result["on"], 50) - percentile(result["off"], 50)
        self.stdout.write(f"added at p50: {p50 * 1e6:.1f} us; counted {after - before} refusals")
