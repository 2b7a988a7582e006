"""``manage.py apikey create|list|revoke``: the API keys clients send as ``Bearer``.

``create`` prints the new key as the last word of its last line (it is shown only once):
``KEY=$(python manage.py apikey create --agent hermes | tail -n1 | awk '{print $NF}')``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets import apikeys
from budgets.models import ApiKey


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it (once)")
        scope = create.add_mutually_exclusive_group(required=True)
        scope.add_argument("--operator", action="store_true", help="may do everything")
        scope.add_argument("--agent", metavar="AGENT_ID", help="may use one agent only")
        create.add_argument(
            "--persona",
            metavar="PERSONA_ID",
            help="with --agent: may use this one persona of the agent only",
        )
        create.add_argument("--name", help="a label to recognise the key by")
        sub.add_parser("list", help="list keys (never their secret part)")
        revoke = sub.add_parser("revoke", help="revoke a key for good")
        revoke.add_argument("prefix", help="the key's prefix, as `apikey list` shows it")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except apikeys.ApiKeyError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, options: dict[str, Any]) -> None:
        if options["operator"]:
            if options["persona"] is not None:
                raise CommandError("--persona narrows an agent key: use it with --agent")
            key, raw = apikeys.create_key(scope=ApiKey.Scope.OPERATOR, name=options["name"])
            what = "operator key"
        else:
            key, raw = apikeys.create_key(
                scope=ApiKey.Scope.AGENT,
                agent_id=options["agent"],
                persona_id=options["persona"],
                name=options["name"],
            )
            what = f"agent key for {key.agent_id}"
            if key.persona_slug:
                what = f"persona key for {key.agent_id}/{key.persona_slug}"
        self.stdout.write(f'created {what} "{key.name}" (prefix {key.prefix})')
        self.stdout.write("store it now, it is not shown again; send it as 'Bearer <key>'")
        self.stdout.write(f"key: {raw}")

    def _list(self, options: dict[str, Any]) -> None:
        rows = [("prefix", "name", "scope", "agent", "persona", "created", "last used", "revoked")]
        for key in apikeys.list_keys():
            rows.append(
                (
                    key.prefix,
                    key.name,
                    key.scope,
                    key.agent_id or "-",
                    key.persona_slug or "-",
                    f"{key.created:%Y-%m-%d %H:%M}",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                    "yes" if key.revoked else ("expired" if key.has_expired else "no"),
                )
            )
        if len(rows) == 1:
            self.stdout.write("no API keys; create one with `manage.py apikey create`")
            return
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))

    def _revoke(self, options: dict[str, Any]) -> None:
        key, changed = apikeys.revoke_key(options["prefix"])
        state = "revoked" if changed else "already revoked"
        self.stdout.write(f'{state} {key.prefix} "{key.name}"')
