"""Django's PostgreSQL backend, with a per-request health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before a kept connection's first
query in each request, so a connection the server dropped (a restart, a terminated
backend) is replaced instead of failing that request with a 500. That round trip was a
quarter of a check's database time (docs/benchmarks.md). A server that ends a session
says so on the socket (an error message, then end of file), so an idle connection whose
socket has nothing to read is still open, and one with something to read gets Django's
full check. A connection inside a transaction, or already known broken, is left to it too.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base


def _idle_and_quiet(connection: psycopg.Connection[object]) -> bool:
    """True when the connection is idle, not closed, and the server sent nothing since."""
    if connection.closed or connection.broken:
        return False
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by Django's base wrapper; declared for the type checker (its stubs lack them).
    health_check_enabled: bool
    health_check_done: bool
    pool: Any

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and _idle_and_quiet(self.connection)
        ):
            self.health_check_done = True
            return
        # Something to read, a transaction open, or a broken connection: SELECT 1 decides.
        super().close_if_health_check_failed()
