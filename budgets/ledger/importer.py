"""``ledger import``: load an existing hal0 ``spend.jsonl`` into a persona's ledger.

A hal0 line is a JSON object with ``ts`` (ISO 8601 with an offset), ``persona_id``,
``surface``, ``model``, ``cost_usd`` and ``request_id``; ``input_tokens`` /
``output_tokens`` are taken when present, and so are the fields of this service's own
mirror lines (``cache_read_tokens``, ``cache_write_tokens``, ``cost_source``,
``price_version``); anything else is ignored. A line without a cost is unpriced.

Each line is imported at most once however often the file is imported: its
``import_key`` is the SHA-256 of the line's normalised content (timestamp in UTC,
cost in nano-USD, canonical JSON), and the database refuses a second row with the same
key for the persona. Two identical lines in a file are therefore one charge.

Lines go through :func:`budgets.ledger.writer.insert_charges` in batches, so the window
counters and the JSONL mirror stay right; nothing else creates charge rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budgets.limits import MAX_TEXT
from hal0.money import LEDGER_MAX_NANOS, MoneyError, parse_usd, usd_number
from hal0.parsers import loads
from hal0.text import unprintable
from personas.models import Persona

BATCH = 5_000
MAX_REPORTED = 20


class ImportFileError(Exception):
    """The file cannot be read at all (missing, a folder, unreadable)."""


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already present (an earlier import, or the same line twice)
    malformed: int = 0
    # (line number, reason) of the first malformed lines; the count above has them all.
    problems: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"imported {self.imported}, skipped {self.skipped} already present, "
            f"malformed {self.malformed}"
        )


class _Malformed(ValueError):
    pass


def _text(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Malformed(f"{key} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise _Malformed(f"{key} is longer than {MAX_TEXT} characters")
    # The API's rule (hal0/text.py): PostgreSQL could not store a NUL at all.
    why = unprintable(value)
    if why is not None:
        raise _Malformed(f"{key} must be printable text, without {why}")
    return value


def _tokens(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{key} must be a whole number >= 0")
    return value


REPORTED, UNPRICED = "reported", "unpriced"
_PRICED = ("reported", "catalogue", "override")


def _pricing(obj: dict[str, Any], cost_nanos: int | None) -> dict[str, Any]:
    """Cache tokens and where the cost came from, as a mirror line of ours carries them."""
    source = obj.get("cost_source", REPORTED if cost_nanos is not None else UNPRICED)
    if cost_nanos is None:
        if source != UNPRICED:
            raise _Malformed(f"cost_source {str(source)[:32]!r} with no cost_usd")
    elif source not in _PRICED:
        raise _Malformed(f"cost_source must be one of {', '.join(_PRICED)} when cost_usd is set")
    version = obj.get("price_version", "")
    if not isinstance(version, str) or len(version) > 64:
        raise _Malformed("price_version must be a string of at most 64 characters")
    return {
        "cost_source": source,
        "price_version": version,
        "cache_read_tokens": _tokens(obj, "cache_read_tokens"),
        "cache_write_tokens": _tokens(obj, "cache_write_tokens"),
    }


def parse_hal0_line(raw: bytes, *, persona_id: str) -> dict[str, Any]:
    """One hal0 line -> the fields of a charge (plus ``import_key``); ``_Malformed`` if not."""
    try:
        obj = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Malformed("not valid JSON") from exc
    if not isinstance(obj, dict):
        raise _Malformed("not a JSON object")
    ts_text = obj.get("ts")
    if not isinstance(ts_text, str):
        raise _Malformed("ts must be an ISO 8601 string")
    try:
        ts = dt.datetime.fromisoformat(ts_text)
    except ValueError as exc:
        raise _Malformed("ts is not an ISO 8601 timestamp") from exc
    if ts.tzinfo is None or ts.utcoffset() is None:
        # A naive time could be any zone; guessing would move charges across day and
        # month boundaries.
        raise _Malformed("ts has no UTC offset (naive timestamp)")
    line_persona = obj.get("persona_id")
    if line_persona is not None and line_persona != persona_id:
        raise _Malformed(f"persona_id {str(line_persona)[:64]!r} is not this persona")
    if "cost_usd" not in obj:
        raise _Malformed("cost_usd is missing")
    cost = obj["cost_usd"]
    try:
        # null = the cost was never reported: kept as unknown, never as $0.00.
        cost_nanos = None if cost is None else parse_usd(cost, field="cost_usd")
    except MoneyError as exc:
        raise _Malformed(str(exc)) from exc
    fields: dict[str, Any] = {
        **_pricing(obj, cost_nanos),
        "ts": ts.astimezone(dt.UTC),
        "surface": _text(obj, "surface"),
        "model": _text(obj, "model", required=False),
        "cost_nanos": cost_nanos,
        "request_id": _text(obj, "request_id"),
        "input_tokens": _tokens(obj, "input_tokens"),
        "output_tokens": _tokens(obj, "output_tokens"),
    }
    fields["import_key"] = import_key(fields)
    return fields


def import_key(fields: dict[str, Any]) -> str:
    normal = {
        "ts": fields["ts"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "surface": fields["surface"],
        "model": fields["model"],
        "cost_nanos": fields["cost_nanos"],
        "request_id": fields["request_id"],
        "input_tokens": fields["input_tokens"],
        "output_tokens": fields["output_tokens"],
    }
    # Only when set: lines without them keep the key they had before these fields existed.
    for key in ("cache_read_tokens", "cache_write_tokens", "price_version"):
        if fields.get(key):
            normal[key] = fields[key]
    if fields.get("cost_source") not in (None, REPORTED, UNPRICED):
        normal["cost_source"] = fields["cost_source"]
    canonical = json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        fh = path.open("rb")
    except IsADirectoryError as exc:
        raise ImportFileError("is a folder, not a file") from exc
    except FileNotFoundError as exc:
        raise ImportFileError("no such file") from exc
    except OSError as exc:
        raise ImportFileError(exc.strerror or "cannot be read") from exc
    with fh:
        for number, chunk in enumerate(fh, start=1):
            yield number, chunk.rstrip(b"\r\n")


def import_file(path: Path, *, persona: Persona, batch_size: int = BATCH) -> ImportResult:
    """Import a hal0 ``spend.jsonl``; safe to run again (already present lines are skipped)."""
    from django.db.models import Sum

    from budgets.ledger.writer import insert_charges
    from budgets.models import Charge

    result = ImportResult()
    pending: dict[str, dict[str, Any]] = {}
    numbers: dict[str, int] = {}  # import key -> its line number, for the limit below
    # The persona's recorded spend, kept up to date as lines go in: a line that would take
    # it past LEDGER_MAX_NANOS (the 64-bit counters' room) is refused like a malformed one.
    total = int(Charge.objects.filter(persona=persona).aggregate(t=Sum("cost_nanos"))["t"] or 0)

    def malformed(number: int, reason: str) -> None:
        result.malformed += 1
        if len(result.problems) < MAX_REPORTED:
            result.problems.append((number, reason))

    def flush() -> None:
        nonlocal total
        if not pending:
            return
        present = set(
            Charge.objects.filter(persona=persona, import_key__in=list(pending)).values_list(
                "import_key", flat=True
            )
        )
        rows = []
        for key, row in pending.items():
            if key in present:
                continue
            cost = row["cost_nanos"] or 0
            if total + cost > LEDGER_MAX_NANOS:
                malformed(
                    numbers[key],
                    "cost_usd would take this persona's recorded spend past "
                    f"{usd_number(LEDGER_MAX_NANOS):.0f} USD, the most its ledger holds",
                )
                continue
            total += cost
            rows.append(row)
        result.skipped += len(present)
        if rows:
            insert_charges(persona, rows, source=Charge.Source.IMPORT)
            result.imported += len(rows)
        pending.clear()
        numbers.clear()

    for number, raw in _lines(path):
        if not raw.strip():
            continue  # blank lines carry nothing; not worth a complaint
        try:
            row = parse_hal0_line(raw, persona_id=persona.slug)
        except _Malformed as exc:
            malformed(number, str(exc))
            continue
        if row["import_key"] in pending:
            result.skipped += 1  # the same line twice in one batch
            continue
        pending[row["import_key"]] = row
        numbers[row["import_key"]] = number
        if len(pending) >= batch_size:
            flush()
    flush()
    # Lines past the limit are found at a batch's end: list every problem in file order.
    result.problems.sort()
    return result
