"""Which budget events a charge or a refused check causes, written at most once.

The statuses come from the one rules computation; this module only turns "this window is
at warn / exceeded" and "this check was refused" into once-per-window events.

Cost on the hot path. A once-per-window event is a unique key (type, scope, window,
window start). Each process remembers the keys it has seen written (or found taken), in
a bounded in-memory set filled after the commit. So:

- a charge in a window already at warn tries the insert once per process and window
  (a no-op ``ON CONFLICT DO NOTHING`` when another process won), then never again;
- a refused check, which takes no lock and writes nothing, writes its ``budget.blocked``
  event in a short transaction of its own the first time this process refuses in that
  window, and does nothing on every later refusal. With N web processes that is at most
  N inserts per scope and window, N - 1 of them no-ops.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from budgets.events.outbox import BUDGET_BLOCKED, BUDGET_EXCEEDED, BUDGET_WARN, record_event
from hal0.money import usd_number

Key = tuple[str, str, str, str, str, dt.date]  # type, kind, agent, persona, window, start
STATUS_RANK = {"none": 0, "ok": 1, "warn": 2, "exceeded": 3}
WINDOW_WORDS = {"daily": "daily", "monthly": "monthly", "lifetime": "lifetime"}


@dataclass(frozen=True)
class WindowReading:
    """One window of one scope after a change, with the status the rules gave it."""

    scope_kind: str  # persona | agent | platform
    agent_id: str
    persona_id: str
    window: str  # daily | monthly | lifetime
    start: dt.date
    resets_at: dt.datetime | None
    cap: int | None
    spent: int | None
    status: str  # none | ok | warn | exceeded

    def label(self) -> str:
        if self.scope_kind == "persona":
            return f"persona {self.agent_id}/{self.persona_id}"
        if self.scope_kind == "agent":
            return f"agent {self.agent_id}"
        return "the platform"


class SeenKeys:
    """A bounded, thread-safe set of event keys this process knows to be written."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._keys: OrderedDict[Key, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: Key) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


seen = SeenKeys()


def _key(event_type: str, r: WindowReading) -> Key:
    return (event_type, r.scope_kind, r.agent_id, r.persona_id, r.window, r.start)


def _remember_after_commit(key: Key) -> None:
    # Only once the event (or the conflicting one) is committed: a rolled-back charge
    # must not stop the next one from writing the event.
    transaction.on_commit(lambda: seen.add(key))


def _threshold_message(event_type: str, r: WindowReading) -> str:
    spent, cap = usd_number(r.spent or 0), usd_number(r.cap or 0)
    word = WINDOW_WORDS.get(r.window, r.window)
    if event_type == BUDGET_EXCEEDED:
        return f"{r.label()} reached its {word} cap: {spent} USD spent of {cap} USD"
    share = f"{(r.spent or 0) * 100 // r.cap} %" if r.cap else "all"
    return f"{r.label()} is at {share} of its {word} cap: {spent} USD spent of {cap} USD"


def _once(
    event_type: str, r: WindowReading, message: str, data: dict[str, Any], now: dt.datetime
) -> bool:
    """Write the once-per-window event ``event_type`` for ``r`` unless this process knows
    it is written; whether this call wrote it."""
    key = _key(event_type, r)
    if key in seen:
        return False
    event_id = record_event(
        type=event_type,
        scope_kind=r.scope_kind,
        agent_id=r.agent_id,
        persona_id=r.persona_id,
        window=r.window,
        window_start=r.start,
        cap_nanos=r.cap,
        spent_nanos=r.spent,
        resets_at=r.resets_at,
        message=message,
        data=data,
        now=now,
    )
    _remember_after_commit(key)
    return event_id is not None


def emit_thresholds(readings: Iterable[WindowReading], *, now: dt.datetime) -> int:
    """``budget.warn`` / ``budget.exceeded`` for every window at or past that threshold.

    Run inside the transaction that recorded the spend. A window that jumps from ok to
    exceeded gets both events: each threshold is announced once per window.
    """
    written = 0
    for r in readings:
        rank = STATUS_RANK.get(r.status, 0)
        for event_type, needed in ((BUDGET_WARN, 2), (BUDGET_EXCEEDED, 3)):
            if rank < needed:
                continue
            written += _once(event_type, r, _threshold_message(event_type, r), {}, now)
    return written


def emit_blocked(r: WindowReading, *, reason: str, data: dict[str, Any], now: dt.datetime) -> bool:
    """``budget.blocked`` once per scope, window and window start, for a refused check.

    ``r.window`` names the limit that refused; limits without a window of their own
    (per-call, paused) are keyed by the day, so they alert once a day. Opens its own short
    transaction when the caller has none (a read-only check).
    """
    if _key(BUDGET_BLOCKED, r) in seen:
        return False  # before any transaction: on SQLite even BEGIN takes the write lock
    with transaction.atomic():
        return _once(BUDGET_BLOCKED, r, f"{r.label()}: a check was refused: {reason}", data, now)
