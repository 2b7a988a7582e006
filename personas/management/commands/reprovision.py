"""``manage.py reprovision <agent_id> [...] [--all] [--repair] [--dry-run]``

Creates agents and their folders, seeds missing personas, imports every persona file
into the database and says what it did. Safe to run again: the second run changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from personas import paths, services
from personas.ids import is_valid_id


class Command(BaseCommand):
    help = (
        "Create agents and their seed personas (hermes, coder) if missing and import every "
        "persona file into the database. Never overwrites a file, except --repair."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("agent_ids", nargs="*", metavar="agent_id")
        parser.add_argument(
            "--all",
            action="store_true",
            help="every agent folder under the data folder and every agent in the database",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help=(
                "restore the seed personas' canonical text, keeping your [persona.budget] "
                "block; the replaced file is kept as <id>.toml.bak-<time> beside it"
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would change, write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Each agent once, in the order given: "reprovision a a" is "reprovision a".
        agent_ids: list[str] = list(dict.fromkeys(options["agent_ids"]))
        if options["all"]:
            agent_ids = sorted(set(agent_ids) | set(services.all_agent_ids()))
            for name in services.misnamed_agent_folders():
                shown = f"agents/{name}"
                self.stderr.write(
                    f"skipped folder {shown!r}: the folder name is not a valid agent id"
                )
            if not agent_ids:
                self.stdout.write(
                    "no agents yet (no agent folder, no agent in the database): "
                    "name one to create it, e.g. reprovision hermes"
                )
                return
        elif not agent_ids:
            raise CommandError("name at least one agent id, or use --all")
        bad = [a for a in agent_ids if not is_valid_id(a)]
        if bad:
            # Refused before anything is written: an id becomes a folder name.
            raise CommandError(
                f"invalid agent id {bad[0]!r}: ids are 1-64 lower-case letters, digits, "
                "'_' or '-', starting with a letter or digit"
            )
        dry_run: bool = options["dry_run"]
        malformed = 0
        failed: list[str] = []
        for agent_id in agent_ids:
            try:
                report = services.provision_agent(
                    agent_id, repair=options["repair"], dry_run=dry_run
                )
            except OSError as exc:
                # A file where a folder belongs, a full disk...: this agent stops here, the
                # others still run, and the exit status says something failed.
                failed.append(agent_id)
                self.stderr.write(f"{agent_id}: failed: {services.describe_os_error(exc)}")
                continue
            note = " (dry run: nothing written)" if dry_run else ""
            self.stdout.write(f"{agent_id}: {report.summary()}{note}")
            if report.agent_created:
                verb = "would create" if dry_run else "created"
                self.stdout.write(f"  {verb} agent {agent_id}")
            if report.agent_file_created:
                verb = "would create" if dry_run else "created"
                shown = paths.agent_display_name(agent_id)
                self.stdout.write(f"  {verb} {shown} (no agent caps yet)")
            for backup in report.backups:
                verb = "would repair" if dry_run else "repaired"
                original = backup.split(".bak-")[0]
                self.stdout.write(f"  {verb} {original} (old text kept as {backup})")
            if report.agent_file_malformed:
                malformed += 1
                self.stderr.write(
                    f"  {paths.agent_display_name(agent_id)} is malformed: "
                    f"{report.agent_file_malformed}; the database keeps its last good caps"
                )
            for name in report.skipped:
                self.stderr.write(f"  skipped {name}: the file name is not a valid persona id")
            for persona_id, message in report.malformed:
                malformed += 1
                self.stderr.write(
                    f"  {paths.display_name(agent_id, persona_id)} is malformed: {message}; "
                    "the database keeps its last good caps"
                )
        if failed:
            raise CommandError(
                f"could not provision {', '.join(failed)}; fix the cause above and run "
                "reprovision again"
            )
        if malformed:
            raise CommandError(
                f"{malformed} persona file{'s are' if malformed != 1 else ' is'} malformed; "
                "fix the file(s) above and run reprovision again"
            )
