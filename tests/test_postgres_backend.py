"""The PostgreSQL backend's health check: no round trip for a connection the server kept,
a fresh connection for one it closed (restart, terminated backend), before a request
uses it."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection as default_connection

# Django's stubs lack the health-check attributes.
connection: Any = default_connection

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]


def _server() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    )


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _new_request() -> None:
    # What the request_started signal does (the test client switches that signal off).
    connection.close_if_unusable_or_obsolete()
    assert connection.health_check_done is False


def test_it_uses_the_backend_with_health_checks_on() -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "hal0.postgresql"
    assert connection.health_check_enabled


def test_a_kept_connection_passes_the_health_check_without_a_query() -> None:
    pid = _backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'health-check-marker'")
    _new_request()
    connection.close_if_health_check_failed()
    assert connection.health_check_done is True
    with _server() as other:
        last = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    # Django's own check would have left "SELECT 1" as this backend's last statement.
    assert last == ("SELECT 'health-check-marker'",)
    assert _backend_pid() == pid


def test_a_terminated_connection_is_replaced_before_the_request_uses_it(api_client: Any) -> None:
    from personas.services import provision_agent

    provision_agent("hermes")
    pid = _backend_pid()
    with _server() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.05)
    _new_request()
    response = api_client.post(
        "/api/agents/hermes/personas/hermes/budget/check",
        {"estimated_cost_usd": 0.01},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert _backend_pid() != pid
