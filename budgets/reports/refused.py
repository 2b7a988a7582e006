"""Refused checks per persona, local day and limit: a best-effort tally.

A refused check must stay a read: it takes no lock and writes no row (an agent looping on
a refusal would otherwise turn every retry into a write). So refusals are counted in this
process's memory, keyed by (persona, local day, scope, limit), and written in batches:
one upsert (``count = count + n``) per key, at most every ``HAL0_REFUSED_FLUSH_S`` seconds
by a background thread, when an admin page reads the tally (so one process shows its own
refusals at once), and when the process exits.

What may be lost: the counts of the last interval (5 s by default) of a process that is
killed (SIGKILL, OOM, a power cut); a batch whose write fails (it is logged and dropped
rather than retried, so one bad key cannot block the rest). Nothing else depends on these
counts: the decision, the events (``budget.blocked``, once per window) and the ledger never
read them. They are derived from nothing reconcilable, so ``counters reconcile`` does not
cover them.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from budgets.services.windows import zone

log = logging.getLogger(__name__)

Key = tuple[int, dt.date, str, str]  # persona pk, local day, scope, limit

_lock = threading.Lock()
_pending: dict[Key, list[Any]] = {}  # key -> [count, last refused at]
_flusher: threading.Thread | None = None
_flusher_pid = 0
_wake = threading.Event()

# The bench's A/B switch (docs/benchmarks.md); always on in service.
ENABLED = True


def note(*, persona: Any, scope: str | None, limit: str | None, now: dt.datetime) -> None:
    """Count one refused check of ``persona`` (refused by ``scope``'s ``limit``). In memory
    only: safe inside the check's transaction, and never a write on the check path."""
    if not ENABLED:
        return
    day = now.astimezone(zone(persona.effective_timezone)).date()
    key = (persona.pk, day, scope or "", limit or "")
    with _lock:
        entry = _pending.get(key)
        if entry is None:
            _pending[key] = [1, now]
        else:
            entry[0] += 1
            if now > entry[1]:
                entry[1] = now
    _ensure_flusher()


def _ensure_flusher() -> None:
    """One daemon thread per process (a fork gets its own), started on the first refusal."""
    global _flusher, _flusher_pid
    interval = float(settings.HAL0_REFUSED_FLUSH_S)
    if interval <= 0:
        return
    if _flusher is not None and _flusher_pid == os.getpid() and _flusher.is_alive():
        return
    with _lock:
        if _flusher is not None and _flusher_pid == os.getpid() and _flusher.is_alive():
            return
        _flusher_pid = os.getpid()
        _flusher = threading.Thread(
            target=_run, args=(interval,), name="hal0-refused-tally", daemon=True
        )
        _flusher.start()


def _run(interval: float) -> None:
    while True:
        _wake.wait(interval)
        _wake.clear()
        try:
            flush()
        finally:
            # The thread's own connection: not kept open between batches.
            connection.close()


def discard() -> None:
    """Forget what is not written yet (tests start from a clean slate)."""
    with _lock:
        _pending.clear()


def pending() -> dict[Key, int]:
    with _lock:
        return {k: v[0] for k, v in _pending.items()}


def flush() -> int:
    """Write this process's pending counts (one upsert per key); returns keys written."""
    with _lock:
        if not _pending:
            return 0
        batch = dict(_pending)
        _pending.clear()
    from personas.models import Persona

    try:
        # A persona deleted since its refusal has nowhere to count: dropped.
        alive = set(
            Persona.objects.filter(pk__in={k[0] for k in batch}).values_list("pk", flat=True)
        )
        rows = [(k, v) for k, v in batch.items() if k[0] in alive]
        if rows:
            _upsert(rows)
    except DatabaseError:
        log.warning("refused-check tally: a batch of %d keys was not written", len(batch))
        return 0
    return len(rows)


def _upsert(rows: Iterable[tuple[Key, list[Any]]]) -> None:
    from budgets.models import RefusedTally

    ops = connection.ops
    table = ops.quote_name(RefusedTally._meta.db_table)
    limit = ops.quote_name("limit")
    # INSERT ... ON CONFLICT DO UPDATE: SQLite (3.24+) and PostgreSQL alike. Adds to the
    # stored count, so several processes' batches for one key all count.
    # Names from the model and the backend; values are parameters.
    sql = (
        f"INSERT INTO {table} (persona_id, day, scope, {limit}, count, last_at) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (persona_id, day, scope, {limit}) DO UPDATE SET "
        f"count = {table}.count + excluded.count, "
        f"last_at = CASE WHEN excluded.last_at > {table}.last_at "
        f"THEN excluded.last_at ELSE {table}.last_at END"
    )
    params = [
        (
            persona_id,
            ops.adapt_datefield_value(day),
            scope,
            limit_name,
            count,
            ops.adapt_datetimefield_value(last_at),
        )
        for (persona_id, day, scope, limit_name), (count, last_at) in rows
    ]
    # A savepoint when inside a transaction (an admin page in a test): a failed batch
    # must not poison the caller's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


atexit.register(flush)


# ---------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class RefusedRow:
    persona_pk: int
    persona: str  # agent/persona
    day: dt.date
    scope: str
    limit: str
    count: int
    last_at: dt.datetime

    @property
    def label(self) -> str:
        """``daily``, ``agent monthly``, ``per_call``: the limit, with its scope unless the
        persona's own."""
        if self.scope in ("persona", ""):
            return self.limit
        return f"{self.scope} {self.limit}"


def refused(
    *, start: dt.date, end: dt.date, persona_pk: int | None = None, limit: int = 200
) -> list[RefusedRow]:
    """Refused checks per persona, day and limit from ``start`` to ``end`` (inclusive,
    each persona's local days), newest day and biggest count first. This process's
    pending counts are written first."""
    from budgets.models import RefusedTally

    flush()
    rows = RefusedTally.objects.filter(day__gte=start, day__lte=end).select_related("persona")
    if persona_pk is not None:
        rows = rows.filter(persona_id=persona_pk)
    rows = rows.order_by("-day", "-count", "persona_id", "scope", "limit")[:limit]
    return [
        RefusedRow(
            persona_pk=r.persona_id,
            persona=str(r.persona),
            day=r.day,
            scope=r.scope,
            limit=r.limit,
            count=r.count,
            last_at=r.last_at,
        )
        for r in rows
    ]
