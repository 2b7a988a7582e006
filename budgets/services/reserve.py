"""Idempotent reserve: one hold per (persona, request_id), whatever the retries.

A client that takes a hold and loses the answer (a dropped connection, a timeout) retries
the same check. Without a key every retry would take another hold, and each one would sit
on the budget until it expired. With ``request_id`` in a ``reserve`` check:

- the first check takes the hold and stores its whole answer with it;
- the same body again answers that stored answer byte for byte and takes nothing;
- another body with the same ``request_id`` is 409 ``hold.conflict``.

The unique constraint ``hold_unique_request_id`` decides, inside the check's transaction
(``INSERT ... ON CONFLICT DO NOTHING``, as the charge does), never a separate "exists?"
query before the insert. The one lookup is on a refused check: nothing is inserted there,
and a repeat whose first hold now counts as held may be refused where the first was not,
so the hold already granted answers instead.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from budgets.models import Hold
from hal0.errors import Conflict
from personas.models import Persona


@dataclass(frozen=True)
class ReserveKey:
    """What makes a reserve idempotent: the client's id and a fingerprint of its body."""

    request_id: str
    body_sha256: str


def _canonical(value: Any) -> Any:
    # Numbers as exact decimals so 0.5 and 0.50 are one body; bools stay bools (a bool is
    # an int in Python, and true must not read as 1).
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return {"$num": str(Decimal(value).normalize())}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return {"$repr": repr(value)}


def check_body_sha256(body: Mapping[str, Any]) -> str:
    """Fingerprint of a whole check body (every field, including ones added later)."""
    text = json.dumps(_canonical(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def reserve_key(body: Mapping[str, Any], request_id: str | None) -> ReserveKey | None:
    return None if request_id is None else ReserveKey(request_id, check_body_sha256(body))


def new_hold_id() -> str:
    return "hold_" + secrets.token_urlsafe(18)


def _conflict(key: ReserveKey, hold: Hold) -> Conflict:
    return Conflict(
        f"request_id {key.request_id[:64]!r} already reserved a hold with another body",
        code="hold.conflict",
        details={"request_id": key.request_id[:200], "hold_id": hold.id},
    )


def _answer_of(hold: Hold, key: ReserveKey) -> dict[str, Any]:
    if hold.body_sha256 != key.body_sha256 or not hold.response:
        raise _conflict(key, hold)
    return dict(json.loads(hold.response))


def replay_refused(persona: Persona, key: ReserveKey | None) -> dict[str, Any] | None:
    """For a refused reserve: the first answer if this request_id already holds a hold."""
    if key is None:
        return None
    hold = Hold.objects.filter(persona=persona, request_id=key.request_id).first()
    return None if hold is None else _answer_of(hold, key)


def take_hold(hold: Hold, answer: dict[str, Any], key: ReserveKey | None) -> dict[str, Any]:
    """Insert ``hold`` for an allowed reserve and return the answer to give.

    ``answer`` is the check's answer with ``hold`` already in it; it is stored on the row so
    a repeat answers exactly the same. Must run inside the check's transaction, under the
    persona's lock.
    """
    if key is None:
        hold.save(force_insert=True)
        return answer
    hold.request_id = key.request_id
    hold.body_sha256 = key.body_sha256
    # Compact, as the charge stores its answer: the replay is the same bytes on SQLite
    # and PostgreSQL.
    hold.response = json.dumps(answer, separators=(",", ":"))
    if _insert_unless_taken(hold):
        return answer
    first = Hold.objects.filter(persona=hold.persona, request_id=key.request_id).first()
    if first is None:  # cannot be: the constraint found a hold to conflict with
        raise RuntimeError(f"hold for {key.request_id[:64]!r} neither inserted nor found")
    return _answer_of(first, key)


def _insert_unless_taken(hold: Hold) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING`` on hold_unique_request_id; True if inserted.

    No savepoint and no IntegrityError: the check's transaction stays usable, and on
    PostgreSQL that is two round trips fewer than a savepoint around ``save()``.
    """
    qn = connection.ops.quote_name
    fields = Hold._meta.concrete_fields
    columns = ", ".join(qn(f.column) for f in fields)
    params = [f.get_db_prep_save(getattr(hold, f.attname), connection) for f in fields]
    # The target names hold_unique_request_id: its columns and its condition. Only quoted
    # constant identifiers are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {qn(Hold._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({qn('persona_id')}, {qn('request_id')}) "
        f"WHERE NOT ({qn('request_id')} = '') DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
