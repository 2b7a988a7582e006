"""Events and their delivery: the outbox, webhook endpoints and the worker that sends.

``record_event`` is the one writer of events: call it inside the transaction of the
change it reports (docs/alerts.md lists the types and the payload). The modules:
``models`` (rows), ``outbox`` (writing and the JSON shape), ``emit`` (once-per-window
budget events), ``hooks`` (what the budget services call), ``worker`` (the loop of
``manage.py worker``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgets.events.outbox import record_event as record_event


def __getattr__(name: str) -> Any:
    # Lazy: budgets.models imports budgets.events.models while the app registry loads.
    if name == "record_event":
        from budgets.events.outbox import record_event

        return record_event
    raise AttributeError(name)


__all__ = ["record_event"]
