"""``manage.py ledger verify|repair|import``: keep the JSONL mirrors in step with the database.

See docs/ledger.md for what each finding means and what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.ledger import importer, reconcile
from personas.ids import is_valid_id
from personas.models import Persona


class Command(BaseCommand):
    help = "Verify, repair or import the per-persona JSONL ledger mirrors."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (
            ("verify", "compare the database with each mirror; exit 1 on any difference"),
            ("repair", "cut torn lines and append what is missing (idempotent)"),
        ):
            p = sub.add_parser(name, help=text)
            p.add_argument("--agent", help="only this agent's personas")
            p.add_argument("--persona", help="only personas with this id")
        p = sub.add_parser("import", help="import an existing hal0 spend.jsonl")
        p.add_argument("path", help="the spend.jsonl to import")
        p.add_argument("--agent", required=True)
        p.add_argument("--persona", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "import":
            self._import(Path(options["path"]), options["agent"], options["persona"])
            return
        personas = self._select(options.get("agent"), options.get("persona"))
        if action == "verify":
            self._verify(personas)
        else:
            self._repair(personas)

    def _select(self, agent_id: str | None, persona_id: str | None) -> list[Persona]:
        for value in (agent_id, persona_id):
            if value is not None and not is_valid_id(value):
                raise CommandError(f"not a valid id: {value!r}")
        personas = reconcile.personas_for(agent_id, persona_id)
        if not personas and (agent_id or persona_id):
            raise CommandError("no persona matches --agent/--persona")
        return personas

    def _verify(self, personas: list[Persona]) -> None:
        differing = repairable = 0
        for persona in personas:
            try:
                report = reconcile.verify_persona(persona)
            except OSError as exc:
                differing += 1
                self.stdout.write(
                    self.style.WARNING(
                        f"{persona.agent_id}/{persona.slug}: cannot read the mirror "
                        f"({exc.strerror or type(exc).__name__})"
                    )
                )
                continue
            if report.ok:
                self.stdout.write(report.summary())
                continue
            differing += 1
            repairable += report.repairable
            self.stdout.write(self.style.WARNING(report.summary()))
            for finding in report.examples:
                self.stdout.write(f"  {finding}")
        total = _personas(len(personas))
        if differing:
            # CommandError exits with status 1 after printing the message. Suggest repair
            # only when it has something to fix: extra and mismatched lines it leaves.
            advice = (
                "`manage.py ledger repair` fixes missing, duplicate and torn lines"
                if repairable
                else "only extra or mismatched lines, which need an operator (docs/ledger.md)"
            )
            raise CommandError(f"verify: differences in {differing} of {total}; {advice}")
        self.stdout.write(self.style.SUCCESS(f"verify: {total}, all in step"))

    def _repair(self, personas: list[Persona]) -> None:
        repaired = unchanged = needs_operator = failed = 0
        for persona in personas:
            try:
                result = reconcile.repair_persona(persona)
            except OSError as exc:
                failed += 1
                self.stdout.write(
                    self.style.ERROR(
                        f"{persona.agent_id}/{persona.slug}: cannot repair the mirror "
                        f"({exc.strerror or type(exc).__name__})"
                    )
                )
                continue
            self.stdout.write(result.summary())
            if result.changed:
                repaired += 1
            else:
                unchanged += 1
            if any(result.left.values()):
                needs_operator += 1
        line = f"repair: repaired {repaired}, unchanged {unchanged}"
        if needs_operator:
            line += f", {needs_operator} with extra or mismatched lines (see docs/ledger.md)"
        self.stdout.write(line)
        if failed:
            raise CommandError(f"repair: {_mirrors(failed)} could not be repaired (see above)")
        if needs_operator:
            # Those lines are evidence and stay; the mirror is still not in step, so a
            # scheduled repair must not read as a success.
            raise CommandError(
                f"repair: out of step with the database in {_mirrors(needs_operator)}: "
                "extra or mismatched lines are left for an operator"
            )

    def _import(self, path: Path, agent_id: str, persona_id: str) -> None:
        if not (is_valid_id(agent_id) and is_valid_id(persona_id)):
            raise CommandError("--agent and --persona must be valid ids")
        persona = (
            Persona.objects.select_related("agent")
            .filter(agent_id=agent_id, slug=persona_id)
            .first()
        )
        if persona is None:
            raise CommandError(f"no persona {agent_id}/{persona_id}")
        try:
            result = importer.import_file(path, persona=persona)
        except importer.ImportFileError as exc:
            raise CommandError(f"cannot import {path.name}: {exc}") from exc
        for number, reason in result.problems:
            self.stdout.write(f"  line {number}: {reason}")
        if result.malformed > len(result.problems):
            self.stdout.write(f"  ... and {result.malformed - len(result.problems)} more")
        self.stdout.write(result.summary())
        if result.malformed:
            # Exit 1, so a script or an operator cannot take a partial import for a whole
            # one; the good lines are in and a re-run after fixing imports just the rest.
            raise CommandError(
                f"import: {result.malformed} malformed lines were not imported (listed above)"
            )


def _personas(n: int) -> str:
    return f"{n} persona" if n == 1 else f"{n} personas"


def _mirrors(n: int) -> str:
    return f"{n} mirror" if n == 1 else f"{n} mirrors"
