"""How an API call arrives (hal0/middleware.py): a Host not served here and plain HTTP
under SECURE_SSL_REDIRECT are JSON errors that name the setting, never Django's HTML page
or a redirect; the landing page at ``/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from personas.models import Persona

pytestmark = pytest.mark.django_db

CHECK = "/api/agents/hermes/personas/coder/budget/check"
BODY = '{"estimated_cost_usd": 0.01}'


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error: dict[str, Any] = json.loads(response.content)["error"]
    assert error["code"] == code
    return error


@pytest.mark.parametrize("debug", [True, False])
def test_a_host_not_served_is_a_json_error_that_names_the_setting(
    client: Client, coder: Persona, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug

    response = client.post(
        CHECK, BODY, content_type="application/json", HTTP_HOST="agents.internal:8000"
    )

    error = error_of(response, 400, "request.invalid")
    assert "'agents.internal' to the ALLOWED_HOSTS setting" in error["message"]
    assert error["details"] == {"host": "agents.internal:8000", "setting": "ALLOWED_HOSTS"}


def test_a_host_header_that_is_no_host_name_says_so(client: Client, coder: Persona) -> None:
    response = client.get("/api/agents", HTTP_HOST="bad host<>")

    error = error_of(response, 400, "request.invalid")
    assert error["message"] == "the Host header 'bad host<>' is not a valid host name"


def test_the_admin_keeps_djangos_page_for_a_host_not_served(client: Client) -> None:
    response = client.get("/admin/login/", HTTP_HOST="agents.internal")

    assert response.status_code == 400
    assert "application/json" not in response["Content-Type"]


def test_a_plain_http_api_call_from_another_host_is_refused_not_redirected(
    client: Client, coder: Persona, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True

    response = client.post(CHECK, BODY, content_type="application/json", REMOTE_ADDR="192.0.2.7")

    error = error_of(response, 403, "request.https_required")
    assert "SECURE_SSL_REDIRECT=false" in error["message"]
    assert "BEHIND_TLS_PROXY=true" in error["message"]
    assert error["details"] == {"setting": "SECURE_SSL_REDIRECT"}


def test_a_plain_http_api_call_from_the_same_host_is_served(
    client: Client, coder: Persona, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True

    response = client.post(CHECK, BODY, content_type="application/json", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200, response.content
    assert json.loads(response.content)["allowed"] is True


def test_a_call_passed_on_by_a_proxy_does_not_count_as_the_same_host(
    client: Client, coder: Persona, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True

    response = client.post(
        CHECK,
        BODY,
        content_type="application/json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.4",
    )

    error_of(response, 403, "request.https_required")


def test_an_https_api_call_is_served(client: Client, coder: Persona, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True

    response = client.post(
        CHECK, BODY, content_type="application/json", REMOTE_ADDR="192.0.2.7", secure=True
    )

    assert response.status_code == 200


def test_the_admin_over_plain_http_is_still_redirected(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/admin/login/", REMOTE_ADDR="192.0.2.7")

    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_the_landing_page_points_at_the_admin_and_the_api_docs(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'href="/admin/"' in body
    assert 'href="/api/docs/"' in body
    assert client.post("/").status_code == 405
