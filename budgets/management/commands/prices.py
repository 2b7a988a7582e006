"""``manage.py prices show|check``: what a model costs, and whether prices.toml is valid.

See docs/api.md, "Pricing".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from budgets.prices import catalogue, quote, store
from budgets.prices.overrides import PricesInvalid


class Command(BaseCommand):
    help = "Show the price of a model, or validate $HAL0_DATA_DIR/prices.toml."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show", help="the price the service charges for a model")
        show.add_argument("model", help="the model as clients send it")
        show.add_argument("--surface", help="where the call goes (picks the provider)")
        sub.add_parser("check", help="validate prices.toml; exit 1 on errors")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "show":
            self._show(options["model"], options.get("surface"))
        else:
            self._check()

    def _show(self, model: str, surface: str | None) -> None:
        state = store.current()
        for error in state.errors:
            self.stderr.write(f"prices.toml is malformed (last good prices in force): {error}")
        price = quote.price_of(model, surface, at=timezone.now())
        if price is None:
            raise CommandError(quote.price_unknown(model, surface).message)
        for key, value in quote.price_json(price).items():
            self.stdout.write(f"{key}: {'-' if value is None else value}")

    def _check(self) -> None:
        path = store.prices_path()
        try:
            overrides = store.read_prices(path)
        except PricesInvalid as exc:
            for error in exc.errors:
                self.stderr.write(f"prices.toml: {error}")
            # CommandError exits with status 1 after printing the message.
            raise CommandError(
                f"prices.toml has {len(exc.errors)} error(s); the service keeps the last "
                "good prices until it is fixed"
            ) from exc
        if not path.exists():
            self.stdout.write(f"no prices.toml: every price comes from {catalogue.VERSION}")
            return
        self.stdout.write(
            f"prices.toml is valid: {len(overrides.entries)} price(s), over {catalogue.VERSION}"
        )
