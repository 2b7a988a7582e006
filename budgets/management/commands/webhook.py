"""``manage.py webhook add|list|remove``: where events are sent.

``add`` prints the endpoint's signing secret as the last word of its last line (it is
shown only once): ``SECRET=$(python manage.py webhook add URL | tail -n1 | awk '{print $NF}')``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.events.endpoints import EndpointInvalid, add_endpoint
from budgets.events.models import WebhookEndpoint


class Command(BaseCommand):
    help = "Add, list or remove webhook endpoints (docs/alerts.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add an endpoint and print its secret once")
        add.add_argument("url")
        add.add_argument("--events", default="", help="comma-separated types (default: all)")
        add.add_argument("--agent", default="", help="only this agent's events")
        add.add_argument("--format", default="standard", choices=WebhookEndpoint.Format.values)
        sub.add_parser("list", help="list endpoints (never their secrets)")
        remove = sub.add_parser("remove", help="remove an endpoint and its deliveries")
        remove.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            try:
                endpoint, secret = add_endpoint(
                    url=options["url"],
                    event_types=options["events"].split(","),
                    agent_id=options["agent"],
                    format=options["format"],
                )
            except EndpointInvalid as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"added webhook endpoint {endpoint.pk}: {endpoint.url}")
            self.stdout.write("signing secret (shown once; verify webhook-signature with it):")
            self.stdout.write(f"secret {secret}")
        elif action == "list":
            endpoints = list(WebhookEndpoint.objects.order_by("id"))
            for e in endpoints:
                state = "enabled" if e.enabled else "disabled"
                if e.consecutive_failures:
                    state += f", {e.consecutive_failures} failures in a row"
                self.stdout.write(
                    f"{e.pk}\t{e.url}\t{e.format}\t"
                    f"events={','.join(e.event_types) or 'all'}\t"
                    f"agent={e.agent_id or 'all'}\t{state}"
                )
            self.stdout.write(f"{len(endpoints)} endpoint(s)")
        else:
            deleted = WebhookEndpoint.objects.filter(pk=options["id"]).delete()[0]
            if not deleted:
                raise CommandError(f"no webhook endpoint {options['id']}")
            self.stdout.write(f"removed webhook endpoint {options['id']}")
