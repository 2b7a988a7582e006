"""The JSONL mirror of the ledger: one line per charge in each persona's ``spend.jsonl``.

The database is the ledger of record; this file is a convenience an operator can
``tail -f | jq``. It is written only after the database commit, so it may fall behind
(a full disk, a crash between commit and append) but never runs ahead. ``ledger verify``
finds every difference and ``ledger repair`` closes the gaps.

Line format (compact JSON, keys in this order, one object per line)::

    {"seq":42,"ts":"2025-03-01T12:00:00.000000+00:00","agent_id":"hermes",
     "persona_id":"coder","surface":"openrouter","model":"anthropic/claude-3.7-sonnet",
     "cost_usd":0.0421,"request_id":"req_abc","input_tokens":1200,"output_tokens":300,
     "sum":"4640fcec62957ae0"}

``seq`` is the charge's id in the database. ``cost_usd`` is the exact amount as a JSON
number, or ``null`` when the cost is not known. Token counts (``input_tokens``,
``output_tokens``, ``cache_read_tokens``, ``cache_write_tokens``) appear only when known.
``cost_source`` (``catalogue``, ``override`` or ``unpriced``) and ``price_version``
appear when the service priced the tokens or could not: a line without them carries a
reported cost, so mirrors written before prices existed read the same and stay valid
(``jq '.cost_source // "reported"'``).
``sum`` is the first 16 hex digits of the SHA-256 of the line's *canonical* form: the
object without ``sum``, serialised with sorted keys, ``(",", ":")`` separators and
UTF-8 text. A reader recomputes it from the parsed object, so the check does not depend
on key order or whitespace.

Concurrency: every writer takes an exclusive ``flock`` on the file, appends, ``fsync``s
and unlocks. ``ledger repair`` may replace the file (to cut torn fragments); writers
therefore check, once they hold the lock, that the path still names the file they
locked, and reopen it if not.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from budgets.monitoring import metrics
from hal0.money import usd_number
from personas.ids import is_valid_id

if TYPE_CHECKING:
    from budgets.models import Charge

log = logging.getLogger(__name__)

FILE_NAME = "spend.jsonl"
SUM_KEY = "sum"
SUM_HEX_DIGITS = 16


class MirrorPathError(ValueError):
    """An agent or persona id that may not be joined into a path."""


def mirror_path(agent_id: str, persona_id: str) -> Path:
    """``$HAL0_DATA_DIR/agents/<agent>/personas/<persona>/spend.jsonl``, from valid ids only."""
    if not (is_valid_id(agent_id) and is_valid_id(persona_id)):
        raise MirrorPathError("invalid agent or persona id")
    return Path(settings.HAL0_DATA_DIR) / "agents" / agent_id / "personas" / persona_id / FILE_NAME


# ---------------------------------------------------------------------------------------
# Line format


def iso_utc(ts: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds: one spelling per instant, so lines compare."""
    if ts.tzinfo is None:
        raise ValueError("naive timestamp")
    return ts.astimezone(dt.UTC).isoformat(timespec="microseconds")


def line_object(
    *,
    seq: int,
    ts: dt.datetime,
    agent_id: str,
    persona_id: str,
    surface: str,
    model: str,
    cost_nanos: int | None,
    request_id: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    cost_source: str = "reported",
    price_version: str = "",
) -> dict[str, Any]:
    """The mirror line for one charge, without its checksum."""
    obj: dict[str, Any] = {
        "seq": seq,
        "ts": iso_utc(ts),
        "agent_id": agent_id,
        "persona_id": persona_id,
        "surface": surface,
        "model": model,
        # null, not 0: a cost that was never reported must not read as $0.00.
        "cost_usd": None if cost_nanos is None else usd_number(cost_nanos),
        "request_id": request_id,
    }
    if input_tokens is not None:
        obj["input_tokens"] = input_tokens
    if output_tokens is not None:
        obj["output_tokens"] = output_tokens
    if cache_read_tokens is not None:
        obj["cache_read_tokens"] = cache_read_tokens
    if cache_write_tokens is not None:
        obj["cache_write_tokens"] = cache_write_tokens
    if cost_source != "reported":
        obj["cost_source"] = cost_source
    if price_version:
        obj["price_version"] = price_version
    return obj


# Built once: json.dumps with options makes a new encoder per call, which shows at
# 100,000 lines (an import).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def checksum(obj: Mapping[str, Any]) -> str:
    body = {k: v for k, v in obj.items() if k != SUM_KEY}
    canonical = _CANONICAL.encode(body)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:SUM_HEX_DIGITS]


def encode_line(obj: Mapping[str, Any]) -> bytes:
    """One compact JSON line with its checksum, ending in ``\\n``."""
    body = {k: v for k, v in obj.items() if k != SUM_KEY}
    body[SUM_KEY] = checksum(body)
    return (_COMPACT.encode(body) + "\n").encode("utf-8")


def charge_line(charge: Charge, *, agent_id: str, persona_id: str) -> dict[str, Any]:
    return line_object(
        seq=charge.pk,
        ts=charge.ts,
        agent_id=agent_id,
        persona_id=persona_id,
        surface=charge.surface,
        model=charge.model,
        cost_nanos=charge.cost_nanos,
        request_id=charge.request_id,
        input_tokens=charge.input_tokens,
        output_tokens=charge.output_tokens,
        cache_read_tokens=charge.cache_read_tokens,
        cache_write_tokens=charge.cache_write_tokens,
        cost_source=charge.cost_source,
        price_version=charge.price_version,
    )


# ---------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ParsedLine:
    """One line of a mirror file as ``ledger verify`` sees it.

    ``obj`` is ``None`` for a fragment that is not a JSON object (a torn write, or text
    that never was a ledger line). ``torn_tail`` marks the last line when the file does
    not end in a newline: a write that was cut short.
    """

    number: int  # 1-based line number
    offset: int  # byte offset of the line's first byte
    raw: bytes  # without the trailing newline
    obj: dict[str, Any] | None
    checksum_ok: bool
    torn_tail: bool

    @property
    def seq(self) -> int | None:
        if self.obj is None:
            return None
        seq = self.obj.get("seq")
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """``(object, checksum_ok)``; ``(None, False)`` when the bytes are not a JSON object."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, False
    if not isinstance(obj, dict):
        return None, False
    return obj, obj.get(SUM_KEY) == checksum(obj)


def read_lines(path: Path) -> Iterator[ParsedLine]:
    """Stream the lines of a mirror file (constant memory); nothing if it does not exist."""
    try:
        fh = path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        # No file there (a file where a folder should be also means no mirror file).
        return
    with fh:
        yield from _iter_parsed(fh)


def _iter_parsed(fh: Any) -> Iterator[ParsedLine]:
    offset = 0
    # Binary file iteration splits on b"\n" and keeps it, one line in memory at a time.
    for number, chunk in enumerate(fh, start=1):
        torn = not chunk.endswith(b"\n")
        raw = chunk if torn else chunk[:-1]
        obj, ok = parse_line(raw)
        yield ParsedLine(number, offset, raw, obj, ok, torn)
        offset += len(chunk)


# ---------------------------------------------------------------------------------------
# Writing


@contextmanager
def locked(path: Path, *, create: bool = True) -> Iterator[int]:
    """An ``O_APPEND`` descriptor on ``path`` holding an exclusive ``flock``.

    ``ledger repair`` may swap the file for a rewritten one while we wait for the lock; a
    lock on the old inode would protect nothing, so after locking we check that the path
    still names the same file and start over if it does not.
    """
    # Read-write so the tail can be inspected with pread; O_APPEND puts every write at the end.
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        created = create and not path.exists()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if not same:
                continue
            if created:
                fsync_dir(path.parent)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return


def fsync_dir(path: Path) -> None:
    # A new file's directory entry survives a crash only once the directory is synced.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_lines(fd: int, lines: Sequence[bytes]) -> None:
    """Append already-encoded lines to a locked descriptor, then ``fsync``.

    If the file ends in a fragment without a newline (a torn write), start on a fresh
    line so the new data never merges with it; ``ledger repair`` cuts the fragment.
    """
    payload = b"".join(lines)
    if not payload:
        return
    if _tail_is_torn(fd):
        payload = b"\n" + payload
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _tail_is_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def append(charges: Sequence[Charge]) -> None:
    """Mirror committed charges to their personas' ``spend.jsonl``. Never raises.

    Called after the database commit. A failure (disk full, permissions, a file where
    the folder should be) is logged with the persona and the seq range; the charge stays
    recorded and ``ledger verify`` reports the gap until ``ledger repair`` fills it.
    """
    if not charges:
        return
    try:
        groups = _group_by_persona(charges)
    except Exception:
        # The contract is "never raises": the money is already recorded.
        log.exception("ledger mirror: could not resolve personas for %d charges", len(charges))
        return
    for (agent_id, persona_id), items in groups.items():
        items.sort(key=lambda c: c.pk)
        seqs = f"{items[0].pk}..{items[-1].pk}"
        try:
            path = mirror_path(agent_id, persona_id)
            lines = [
                encode_line(charge_line(c, agent_id=agent_id, persona_id=persona_id)) for c in items
            ]
            with locked(path) as fd:
                write_lines(fd, lines)
        except (OSError, MirrorPathError) as exc:
            metrics.mirror_append_failed(len(items))
            log.warning(
                "ledger mirror: append failed for %s/%s seq %s (%d lines): %s; "
                "the charges are recorded; run `manage.py ledger repair`",
                agent_id,
                persona_id,
                seqs,
                len(items),
                exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__,
            )
        except Exception:
            metrics.mirror_append_failed(len(items))
            log.exception(
                "ledger mirror: append failed for %s/%s seq %s", agent_id, persona_id, seqs
            )


def _group_by_persona(charges: Sequence[Charge]) -> dict[tuple[str, str], list[Charge]]:
    from personas.models import Persona

    # Personas already loaded on the charge cost nothing; the rest take one query.
    known: dict[int, tuple[str, str]] = {}
    for c in charges:
        if type(c).persona.is_cached(c):
            known[c.persona_id] = (c.persona.agent_id, c.persona.slug)
    missing = {c.persona_id for c in charges} - known.keys()
    if missing:
        for pk, agent_id, slug in Persona.objects.filter(pk__in=missing).values_list(
            "pk", "agent_id", "slug"
        ):
            known[pk] = (agent_id, slug)
    groups: dict[tuple[str, str], list[Charge]] = {}
    for c in charges:
        groups.setdefault(known[c.persona_id], []).append(c)
    return groups
