"""The README's production recipe, served by a real gunicorn: DEBUG unset, a SECRET_KEY,
``ALLOWED_HOSTS`` set, HTTPS hardening on, an agent on the same host calling over plain
HTTP; and ``BEHIND_TLS_PROXY=false`` meaning that nobody's ``X-Forwarded-Proto`` is trusted
(gunicorn trusts it from 127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from budgets.apikeys import create_key
from budgets.bench.http import Gunicorn, roundtrip
from personas.models import Persona
from tests.server_support import production_env

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = "/api/agents/hermes/personas/coder/budget/check"


def request(
    server: Gunicorn, method: str, path: str, *, host: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    head += ["Content-Type: application/json", "Connection: close", "", ""]
    return roundtrip(server.port, "\r\n".join(head).encode() + body)


@pytest.fixture
def key(make_persona: Callable[..., Persona]) -> str:
    make_persona("hermes", "coder", "daily_usd = 1.0\n")
    return create_key(scope="agent", agent_id="hermes")[1]


@pytest.fixture
def recipe_server(tmp_path: Path) -> Iterator[Gunicorn]:
    """As the README runs it: ALLOWED_HOSTS=spend.example.com, everything else default."""
    with Gunicorn(
        workers=1, log_dir=tmp_path, env=production_env(ALLOWED_HOSTS="spend.example.com")
    ) as server:
        yield server


def test_a_same_host_agent_gets_the_api_over_plain_http(recipe_server: Gunicorn, key: str) -> None:
    status, body = request(
        recipe_server,
        "POST",
        CHECK,
        host="spend.example.com",
        body=b'{"estimated_cost_usd": 0.01}',
        Authorization=f"Bearer {key}",
    )

    assert status == 200, body  # served, not 301 to an https:// port that has no TLS
    assert json.loads(body)["allowed"] is True


def test_a_host_not_in_allowed_hosts_is_a_json_error_naming_the_setting(
    recipe_server: Gunicorn, key: str
) -> None:
    port = recipe_server.port
    status, body = request(
        recipe_server, "GET", "/api/agents", host=f"127.0.0.1:{port}", Authorization=f"Bearer {key}"
    )

    assert status == 400
    error: dict[str, Any] = json.loads(body)["error"]
    assert error["code"] == "request.invalid"
    assert "add '127.0.0.1' to the ALLOWED_HOSTS setting" in error["message"]


def test_x_forwarded_proto_is_not_trusted_without_behind_tls_proxy(
    recipe_server: Gunicorn, key: str
) -> None:
    # A call passed on by a proxy over plain HTTP that claims https: still plain HTTP.
    status, body = request(
        recipe_server,
        "GET",
        "/api/agents",
        host="spend.example.com",
        Authorization=f"Bearer {key}",
        X_Forwarded_For="198.51.100.4",
        X_Forwarded_Proto="https",
    )
    assert status == 403, body
    assert json.loads(body)["error"]["code"] == "request.https_required"

    status, _ = request(
        recipe_server, "GET", "/admin/login/", host="spend.example.com", X_Forwarded_Proto="https"
    )
    assert status == 301  # the admin is still sent to https://


def test_behind_tls_proxy_trusts_the_proxys_x_forwarded_proto(tmp_path: Path, key: str) -> None:
    env = production_env(ALLOWED_HOSTS="spend.example.com", BEHIND_TLS_PROXY="true")
    with Gunicorn(workers=1, log_dir=tmp_path, env=env) as server:
        status, body = request(
            server,
            "GET",
            "/api/agents",
            host="spend.example.com",
            Authorization=f"Bearer {key}",
            X_Forwarded_For="198.51.100.4",
            X_Forwarded_Proto="https",
        )

    assert status == 200, body
    assert [a["id"] for a in json.loads(body)["agents"]] == ["hermes"]
