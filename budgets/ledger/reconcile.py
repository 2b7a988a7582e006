"""``ledger verify`` and ``ledger repair``: compare the database with each JSONL mirror.

Both stream. The file is read one line at a time and its lines are looked up in the
database in batches; the seqs seen in the file are remembered in a bitmap (one bit per
charge id, 125 KB per million charges) so that the database's ids can then be streamed in
order to find the ones the file lacks. Memory does not grow with the number of lines,
and the file's order does not matter: appends happen after commit, so two concurrent
charges may land in either order, and ``repair`` appends what was missing at the end.

Findings, per persona:

``missing``     a charge in the database has no line (a failed or interrupted append)
``extra``       a line whose seq is not a charge of this persona
``mismatched``  a line whose fields differ from the charge, or whose checksum is wrong
``duplicate``   a second, identical line for a seq (an append that raced a repair)
``fragment``    a line that is not a JSON object (what is left of a torn write)
``torn``        the last line has no newline (a write cut short)

``repair`` cuts torn tails, fragments and identical duplicates, and appends what is
missing in seq order. It never rewrites or removes an extra or mismatched line: the
mirror is append-only and those need an operator (see docs/ledger.md).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import Max

from budgets.ledger import mirror
from budgets.models import Charge
from personas.models import Persona

LOOKUP_BATCH = 2_000
APPEND_BATCH = 5_000
MAX_EXAMPLES = 10
_FIELDS = (
    "id",
    "ts",
    "surface",
    "model",
    "cost_nanos",
    "request_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_source",
    "price_version",
)


# What ``ledger repair`` fixes by itself, and what it leaves for an operator to judge
# (a line the database does not have, or one that disagrees with it, is evidence).
REPAIRABLE = ("missing", "duplicate", "fragment", "torn")
FOR_AN_OPERATOR = ("extra", "mismatched")


@dataclass
class Finding:
    kind: str
    seq: int | None = None
    line: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.line is not None:
            where.append(f"line {self.line}")
        text = f"{self.kind} ({', '.join(where)})" if where else self.kind
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class PersonaReport:
    agent_id: str
    persona_id: str
    db_rows: int = 0
    file_lines: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("missing", "extra", "mismatched", "duplicate", "fragment", "torn"), 0
        )
    )
    examples: list[Finding] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.agent_id}/{self.persona_id}"

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    @property
    def repairable(self) -> bool:
        """Whether ``ledger repair`` has something to fix (the rest needs an operator)."""
        return any(self.counts[kind] for kind in REPAIRABLE)

    def add(self, finding: Finding) -> None:
        self.counts[finding.kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(finding)

    def summary(self) -> str:
        if self.ok:
            return f"{self.label}: ok ({self.db_rows} charges, {self.file_lines} lines)"
        parts = [f"{n} {kind}" for kind, n in self.counts.items() if n and kind != "torn"]
        if self.counts["torn"]:
            parts.append("torn last line")
        return f"{self.label}: {', '.join(parts)} ({self.db_rows} charges, {self.file_lines} lines)"


@dataclass
class _Scan:
    """What one pass over a mirror file found, plus what repair needs to act on it."""

    report: PersonaReport
    seen: bytearray
    drop_lines: set[int] = field(default_factory=set)  # fragments and identical duplicates
    torn_offset: int | None = None  # where the torn last line starts


@dataclass
class RepairResult:
    report: PersonaReport  # the findings before the repair
    cut_torn: bool = False
    cut_lines: int = 0
    appended: int = 0
    left: dict[str, int] = field(default_factory=dict)  # extra/mismatched left alone

    @property
    def changed(self) -> bool:
        return self.cut_torn or self.cut_lines > 0 or self.appended > 0

    def summary(self) -> str:
        label = self.report.label
        left = ", ".join(f"{n} {kind}" for kind, n in self.left.items() if n)
        if not self.changed:
            base = f"{label}: unchanged"
        else:
            done = []
            if self.cut_torn:
                done.append("cut the torn last line")
            if self.cut_lines:
                done.append(f"cut {self.cut_lines} fragment/duplicate lines")
            if self.appended:
                done.append(f"appended {self.appended} missing")
            base = f"{label}: {', '.join(done)}"
        return f"{base}; left for an operator: {left}" if left else base


# ---------------------------------------------------------------------------------------
# Selecting personas


def personas_for(agent_id: str | None = None, persona_id: str | None = None) -> list[Persona]:
    qs = Persona.objects.select_related("agent").order_by("agent_id", "slug")
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if persona_id:
        qs = qs.filter(slug=persona_id)
    return list(qs)


# ---------------------------------------------------------------------------------------
# Verify


def _expected(persona: Persona, row: dict[str, Any]) -> dict[str, Any]:
    return mirror.line_object(
        seq=row["id"],
        ts=row["ts"],
        agent_id=persona.agent_id,
        persona_id=persona.slug,
        surface=row["surface"],
        model=row["model"],
        cost_nanos=row["cost_nanos"],
        request_id=row["request_id"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        cost_source=row["cost_source"],
        price_version=row["price_version"],
    )


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _scan(persona: Persona, path: Path) -> _Scan:
    charges = Charge.objects.filter(persona=persona)
    max_id = charges.aggregate(m=Max("id"))["m"] or 0
    report = PersonaReport(persona.agent_id, persona.slug, db_rows=charges.count())
    scan = _Scan(report, bytearray((max_id >> 3) + 1))
    seen = scan.seen

    def is_seen(seq: int) -> bool:
        return 0 < seq <= max_id and bool(seen[seq >> 3] & (1 << (seq & 7)))

    def mark(seq: int) -> None:
        seen[seq >> 3] |= 1 << (seq & 7)

    for batch in _batched(mirror.read_lines(path), LOOKUP_BATCH):
        report.file_lines += len(batch)
        seqs = [ln.seq for ln in batch if ln.seq is not None and 0 < ln.seq <= max_id]
        rows = (
            {r["id"]: r for r in charges.filter(id__in=seqs).order_by().values(*_FIELDS)}
            if seqs
            else {}
        )
        for ln in batch:
            if ln.torn_tail:
                # Cut short while being written: repair cuts it, and the charge it was
                # meant to carry (if any) is appended again as missing.
                report.add(Finding("torn", ln.seq, ln.number, "no newline at end of file"))
                scan.torn_offset = ln.offset
                continue
            if ln.obj is None:
                report.add(Finding("fragment", None, ln.number, "not a JSON object"))
                scan.drop_lines.add(ln.number)
                continue
            seq = ln.seq
            if seq is None:
                report.add(Finding("extra", None, ln.number, "line has no seq"))
                continue
            row = rows.get(seq)
            if row is None:
                report.add(Finding("extra", seq, ln.number, "no such charge for this persona"))
                continue
            expected = _expected(persona, row)
            body = {k: v for k, v in ln.obj.items() if k != mirror.SUM_KEY}
            same = ln.checksum_ok and body == expected
            if is_seen(seq):
                if same:
                    report.add(Finding("duplicate", seq, ln.number, "same line again"))
                    scan.drop_lines.add(ln.number)
                else:
                    report.add(Finding("mismatched", seq, ln.number, "second, different line"))
                continue
            mark(seq)
            if not same:
                report.add(Finding("mismatched", seq, ln.number, _difference(body, expected, ln)))
    return scan


def _difference(body: dict[str, Any], expected: dict[str, Any], ln: mirror.ParsedLine) -> str:
    keys = sorted(k for k in expected.keys() | body.keys() if body.get(k) != expected.get(k))
    if keys:
        return "differs in " + ", ".join(keys)
    return "bad checksum" if not ln.checksum_ok else "differs"


def _missing_ids(persona: Persona, scan: _Scan) -> Iterator[int]:
    seen = scan.seen
    ids = (
        Charge.objects.filter(persona=persona)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=APPEND_BATCH)
    )
    for seq in ids:
        if not seen[seq >> 3] & (1 << (seq & 7)):
            yield seq


def verify_persona(persona: Persona) -> PersonaReport:
    path = mirror.mirror_path(persona.agent_id, persona.slug)
    scan = _scan(persona, path)
    for seq in _missing_ids(persona, scan):
        scan.report.add(Finding("missing", seq, None, "charge has no line"))
    return scan.report


def verify(
    personas: Iterable[Persona], *, on_report: Callable[[PersonaReport], None] | None = None
) -> list[PersonaReport]:
    reports = []
    for persona in personas:
        report = verify_persona(persona)
        if on_report:
            on_report(report)
        reports.append(report)
    return reports


# ---------------------------------------------------------------------------------------
# Repair


def repair_persona(persona: Persona) -> RepairResult:
    """Cut what cannot be a ledger line, append what is missing. Idempotent.

    Holds the file's lock throughout, so the service's appends wait (they happen after
    the database commit, so no request is refused meanwhile).
    """
    path = mirror.mirror_path(persona.agent_id, persona.slug)
    with mirror.locked(path) as fd:
        scan = _scan(persona, path)
        result = RepairResult(scan.report)
        if scan.drop_lines:
            fd = _rewrite_without(path, fd, scan.drop_lines, cut_tail=scan.torn_offset is not None)
            result.cut_lines = len(scan.drop_lines)
            result.cut_torn = scan.torn_offset is not None
        elif scan.torn_offset is not None:
            os.ftruncate(fd, scan.torn_offset)
            os.fsync(fd)
            result.cut_torn = True
        for ids in _batched(_missing_ids(persona, scan), APPEND_BATCH):
            rows = (
                Charge.objects.filter(persona=persona, id__in=ids).order_by("id").values(*_FIELDS)
            )
            mirror.write_lines(fd, [mirror.encode_line(_expected(persona, r)) for r in rows])
            result.appended += len(ids)
    result.left = {k: scan.report.counts[k] for k in FOR_AN_OPERATOR}
    return result


def _rewrite_without(path: Path, locked_fd: int, drop: set[int], *, cut_tail: bool) -> int:
    """Replace the file with a copy lacking the given lines; return a locked fd on it.

    The copy is written next to the file, synced, locked, and renamed over it. Writers
    waiting on the old file's lock notice the swap when they get it and reopen.
    """
    tmp = path.with_name(f".{path.name}.repair-{os.getpid()}")
    out = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(out, fcntl.LOCK_EX)
        with path.open("rb") as src, os.fdopen(os.dup(out), "ab") as dst:
            for number, chunk in enumerate(src, start=1):
                if number in drop or (cut_tail and not chunk.endswith(b"\n")):
                    continue
                dst.write(chunk)
            dst.flush()
        os.fsync(out)
        os.replace(tmp, path)
        mirror.fsync_dir(path.parent)
    except BaseException:
        os.close(out)
        tmp.unlink(missing_ok=True)
        raise
    # Move our lock to the new file: dup2 keeps ``locked_fd``'s number valid for the
    # caller's context manager, which unlocks and closes it.
    os.dup2(out, locked_fd)
    os.close(out)
    return locked_fd
