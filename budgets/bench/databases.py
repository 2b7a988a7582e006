"""Throwaway databases: a temporary SQLite file, or a PostgreSQL database made and dropped.

The bench never runs against the database the settings name: for PostgreSQL it only
borrows the server address and credentials of ``--database-url`` / ``DATABASE_URL`` to
create ``hal0_bench_<random>`` next to it, and drops that database afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme in POSTGRES_SCHEMES


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'bench.sqlite3'}"


def _connect_kwargs(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "dbname": "postgres",  # the maintenance database: never the one the URL names
        "autocommit": True,
    }
    if parts.password:
        kwargs["password"] = parts.password
    return kwargs


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def throwaway_postgres(url: str) -> Iterator[tuple[str, str]]:
    """``(url, server_version)`` of a fresh database on ``url``'s server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    # Named after the URL's database (hal0_alice -> hal0_alice_bench_1a2b3c4d), so people
    # sharing a server can tell their throwaway databases apart; never that database itself.
    base = urlsplit(url).path.strip("/")[:30] or "hal0"
    name = f"{base}_bench_{secrets.token_hex(4)}"
    kwargs = _connect_kwargs(url)
    with psycopg.connect(**kwargs) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(url, name), version
    finally:
        with psycopg.connect(**kwargs) as conn:
            # FORCE ends a connection a killed worker may have left behind (PostgreSQL 13+).
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
