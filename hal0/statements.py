"""One row of a hot-path statement, at the least cost each database allows.

A check runs one statement; what Django adds around it is a large part of its time:

- SQLite: Django rewrites ``%s`` to ``?`` on every execution (a regex over the whole
  text, which for a check with caps at three scopes is a few kilobytes). The rewritten
  text is cached here per statement text, and the row is read from the driver directly.
- PostgreSQL: Django binds parameters on the client, so the server parses and plans the
  text anew on every execution; for the check's statement planning took longer than
  running it (docs/benchmarks.md). Here it is bound on the server and prepared once per
  connection (psycopg's ``prepare=True``), then only executed. ``HAL0_DB_PREPARE=false``
  turns that off, for a pooler that cannot keep prepared statements (PgBouncer before
  1.21 in transaction mode).

Everything Django's own cursor does around a statement is kept: the connection's health
check and opening, the refusal inside a broken transaction, its error classes, and the
query log (``DEBUG``, ``CaptureQueriesContext``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

_PLACEHOLDER = re.compile(r"(?<!%)%s")


@lru_cache(maxsize=64)
def _qmark(sql: str) -> str:
    """Django's own rewrite for SQLite (``%s`` to ``?``, ``%%`` to ``%``), once per text."""
    return _PLACEHOLDER.sub("?", sql).replace("%%", "%")


def prepared_statements(vendor: str | None = None) -> bool:
    """Whether ``fetch_one`` prepares its statements on this connection (PostgreSQL);
    ``vendor``: the connection's, when the caller has it at hand."""
    return (vendor or connection.vendor) == "postgresql" and bool(settings.HAL0_DB_PREPARE)


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (Django's ``%s`` placeholders) with ``params``, or None.

    For statements whose text is one of a few constants (built once and cached by their
    callers): prepared statements and the rewrite cache are keyed by the text.
    """
    if connection.vendor == "sqlite":
        run = _sqlite_run
    elif prepared_statements():
        run = _postgresql_run
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None else tuple(row)
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    connection.validate_thread_sharing()
    started = time.monotonic()
    with connection.wrap_database_errors:
        row = run(sql, params)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return row


def _sqlite_run(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    row = connection.connection.execute(_qmark(sql), tuple(params)).fetchone()
    return None if row is None else tuple(row)


def _postgresql_run(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    return None if row is None else tuple(row)


# The last instant adapted for the database: (instant, vendor, adapted value). A check
# adapts the same ``now`` for the persona's holds and again for each scope's. One tuple,
# replaced whole, so a thread never pairs its instant with another thread's value.
_STAMP: tuple[Any, str, Any] = (None, "", None)


def stamp_of(now: dt.datetime) -> Any:
    """``connection.ops.adapt_datetimefield_value(now)``, once per instant and database."""
    global _STAMP
    last = _STAMP
    vendor = connection.vendor
    if last[0] is now and last[1] == vendor:
        return last[2]
    value = connection.ops.adapt_datetimefield_value(now)
    _STAMP = (now, vendor, value)
    return value
