"""WSGI entry point, for gunicorn: ``gunicorn hal0.wsgi``.

Requests under ``/api/`` go through a handler without the middleware that serve only the
admin: sessions, CSRF, logged-in users, messages and django-axes' login watch. The API
authenticates every request by its Bearer key (DRF, budgets/auth.py) and its views are
CSRF-exempt, so those five did nothing there but cost about 55 µs a request
(docs/benchmarks.md). Security headers, ``CommonMiddleware``, WhiteNoise and
``X-Frame-Options`` stay on both. ``settings.MIDDLEWARE`` keeps the full list, so the
deployment checks and the test client see the admin's configuration unchanged.
"""

import gc
import io
import os
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")

API_PREFIX = "/api/"
ADMIN_ONLY_MIDDLEWARE = frozenset(
    {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "axes.middleware.AxesMiddleware",
    }
)


class ApiHandler(WSGIHandler):
    """Django's handler with ``MIDDLEWARE`` less the admin-only entries."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Built once, when the worker starts: the chain is read from the setting here
        # and nowhere else, so the setting is narrowed for this call only.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [m for m in full if m not in ADMIN_ONLY_MIDDLEWARE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


_site = get_wsgi_application()
_api = ApiHandler()


def settle() -> None:
    """Load what the first request would (the URL patterns), then take every object alive
    now out of the garbage collector's sight (``gc.freeze``).

    A worker holds some hundred thousand long-lived objects (modules, models, the URL
    resolver); each full collection walked them all, which showed as about a third of a
    check's time in-process (docs/benchmarks.md). Frozen, they are never collected (they
    live as long as the process anyway), and a worker forked after this shares their pages.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (loads every urls module)
    gc.collect()
    gc.freeze()


settle()


def with_chunked_body(environ: dict[str, Any]) -> dict[str, Any]:
    """A body sent with ``Transfer-Encoding: chunked`` and no ``Content-Length``, read in.

    gunicorn hands such a body over de-chunked, but Django reads only ``Content-Length``
    bytes and would see an empty body (400 ``budget.invalid_body`` for a good request).
    At most one byte past the body limit is read: a longer body then shows a length over
    the limit and gets the usual ``413 request.too_large``.
    """
    if environ.get("CONTENT_LENGTH"):
        return environ
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return environ
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = environ["wsgi.input"].read(-1 if limit is None else limit + 1)
    return {**environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}


def with_own_scheme(environ: dict[str, Any]) -> dict[str, Any]:
    """``https`` only when the connection is TLS, unless ``BEHIND_TLS_PROXY`` is on.

    gunicorn sets ``wsgi.url_scheme`` to ``https`` from ``X-Forwarded-Proto`` for peers in
    its ``forwarded_allow_ips`` (127.0.0.1 by default), so any process on the host could
    claim HTTPS. With ``BEHIND_TLS_PROXY=false`` that header is trusted from nobody: the
    scheme is ``https`` only when gunicorn itself holds a TLS socket (``--certfile``).
    """
    if environ.get("wsgi.url_scheme") != "https" or settings.BEHIND_TLS_PROXY:
        return environ
    sock = environ.get("gunicorn.socket")
    if sock is None or isinstance(sock, ssl.SSLSocket):
        return environ  # not gunicorn, or TLS on this very connection
    return {**environ, "wsgi.url_scheme": "http"}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """API paths to the short chain, everything else (admin, static) to the full one."""
    environ = with_own_scheme(environ)
    if environ.get("PATH_INFO", "").startswith(API_PREFIX):
        return _api(with_chunked_body(environ), start_response)
    return _site(environ, start_response)
