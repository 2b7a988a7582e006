"""The production WSGI application: API paths skip the admin-only middleware, and answer
exactly as through Django's full handler; the admin keeps its whole chain."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from budgets.apikeys import create_key
from budgets.models import Charge
from hal0 import wsgi
from personas.models import Persona

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/agents/hermes/personas/coder/budget"


def call(
    app: Callable[..., Any],
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    chunked: bool = False,
) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "https",  # as behind a TLS proxy: no redirect to https
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **{f"HTTP_{k.upper()}": v for k, v in (headers or {}).items()},
    }
    if chunked:
        # As gunicorn passes such a body on: de-chunked, with no Content-Length.
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    started: list[Any] = []
    chunks = app(environ, lambda status, head, *exc: started.append((status, head)))
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    status, head = started[0]
    return status, sorted(head), data


@pytest.fixture
def coder(make_persona: Callable[..., Persona], settings: Any) -> Persona:
    settings.HAL0_REQUIRE_API_KEY = True
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


def test_the_setting_keeps_the_full_middleware_list() -> None:
    assert set(settings.MIDDLEWARE) >= wsgi.ADMIN_ONLY_MIDDLEWARE
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE


def test_api_answers_are_the_same_as_through_the_full_chain(coder: Persona) -> None:
    raw = create_key(scope="agent", agent_id="hermes")[1]
    auth = {"authorization": f"Bearer {raw}"}
    charge = b'{"surface":"s","model":"m","cost_usd":0.01,"request_id":"r1"}'
    requests: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("POST", f"{URL}/check", b'{"estimated_cost_usd": 0.5}', auth),
        ("POST", f"{URL}/check", b"{not json", auth),
        ("POST", f"{URL}/check", b'{"estimated_cost_usd": 0.5}', {}),
        ("POST", f"{URL}/charge", charge, auth),
        ("POST", f"{URL}/charge", charge, auth),  # the replay
        ("GET", URL, b"", auth),
        ("PUT", URL, b'{"daily_usd": 2}', auth),
        ("POST", f"{URL}/check", b'{"estimated_cost_usd": 0.5}', {**auth, "accept": "text/html"}),
        ("GET", "/api/nowhere", b"", auth),
    ]
    full = WSGIHandler()
    for method, path, body, headers in requests:
        short = call(wsgi.application, method, path, body, headers)
        assert short == call(full, method, path, body, headers), (method, path)
        assert ("X-Frame-Options", "DENY") in short[1]
        assert not any(name == "Set-Cookie" for name, _ in short[1])


def test_the_admin_keeps_its_chain(db: None) -> None:
    # CSRF is enforced on the admin's login form: a POST without its token is refused.
    status, _, _ = call(wsgi.application, "POST", "/admin/login/", b"username=x&password=y")
    assert status.startswith("403")
    status, head, _ = call(wsgi.application, "GET", "/admin/login/")
    assert status.startswith("200")
    cookies = [value.strip() for name, value in head if name == "Set-Cookie"]
    assert any(cookie.startswith("csrftoken=") for cookie in cookies)


def test_a_chunked_body_is_read_like_one_with_a_length(coder: Persona) -> None:
    raw = create_key(scope="agent", agent_id="hermes")[1]
    body = b'{"surface":"s","model":"m","cost_usd":0.25,"request_id":"r-chunked"}'

    status, _, data = call(
        wsgi.application,
        "POST",
        f"{URL}/charge",
        body,
        {"authorization": f"Bearer {raw}"},
        chunked=True,
    )

    assert status.startswith("200"), data
    assert json.loads(data)["spend"]["today_usd"] == 0.25
    assert Charge.objects.get().request_id == "r-chunked"


def test_a_chunked_body_over_the_limit_is_413(coder: Persona, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    raw = create_key(scope="agent", agent_id="hermes")[1]
    body = b'{"estimated_cost_usd": 0.5, "pad": "' + b"x" * 200 + b'"}'

    status, _, data = call(
        wsgi.application,
        "POST",
        f"{URL}/check",
        body,
        {"authorization": f"Bearer {raw}"},
        chunked=True,
    )

    assert status.startswith("413")
    assert json.loads(data)["error"]["code"] == "request.too_large"


def test_a_worker_takes_what_it_loaded_out_of_the_collectors_sight() -> None:
    """Once imported, the module has loaded the URL patterns and frozen what is alive
    (``settle``): a fresh process, as a gunicorn worker starts."""
    import os
    import subprocess

    probe = (
        "import gc, hal0.wsgi\n"
        "from django.urls import get_resolver\n"
        "print(gc.get_freeze_count(), 'url_patterns' in vars(get_resolver()))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hal0.settings", "DEBUG": "true"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    frozen, loaded = out.stdout.split()
    assert int(frozen) > 10_000
    assert loaded == "True"
