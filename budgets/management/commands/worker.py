"""``manage.py worker``: run the service's background work (webhook deliveries) until
stopped. Run one or more beside the web server; they never send the same delivery twice
at once (docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from budgets.events.worker import Worker


class Command(BaseCommand):
    help = "Run background work (webhook deliveries) until SIGTERM or Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            help="seconds to wait when there is no work (default HAL0_WORKER_POLL_S)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker(poll_s=options["poll"])
        worker.install_signal_handlers()
        self.stdout.write(f"worker {worker.worker_id} running; Ctrl-C to stop")
        self.stdout.flush()
        worker.run()
        self.stdout.write(f"worker {worker.worker_id} stopped")
