"""How an API call arrives: the Host it names and whether it came over HTTPS.

First in the chain, for ``/api/`` paths only. Both refusals are the JSON envelope with a
message that names the setting to change, DEBUG on or off: a client (or the operator
reading its log) learns what to do instead of getting Django's HTML page, a bare
``bad request`` or a redirect.

- A ``Host`` not in ``ALLOWED_HOSTS``: ``400 request.invalid`` that names the host.
- ``SECURE_SSL_REDIRECT`` on and the call came over plain HTTP: an API call is never
  redirected (a client does not follow a 301 with its POST body, and its key went over
  the wire in clear already). A call from the same host (loopback, not passed on by a
  proxy) is served: its traffic never leaves the machine. Any other is
  ``403 request.https_required``, which says to call over HTTPS, to set
  ``BEHIND_TLS_PROXY=true`` behind a TLS proxy, or ``SECURE_SSL_REDIRECT=false`` for a
  private network. The admin keeps Django's redirect (``SECURE_REDIRECT_EXEMPT``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from hal0.errors import envelope_response, host_not_allowed

API_PREFIX = "/api/"
# Headers a proxy adds when it passes a request on: such a call did not start on this host
# even when it reaches the service from 127.0.0.1.
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_same_host(request: HttpRequest) -> bool:
    """A call that started on this machine: from a loopback address, no proxy in between."""
    if any(request.META.get(header) for header in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def https_required() -> HttpResponse:
    return envelope_response(
        "request.https_required",
        "this API is served over HTTPS only (SECURE_SSL_REDIRECT is on): call it with "
        "https://, set BEHIND_TLS_PROXY=true when a TLS proxy in front of the service sets "
        "X-Forwarded-Proto, or set SECURE_SSL_REDIRECT=false to serve it over plain HTTP "
        "on a private network",
        403,
        {"setting": "SECURE_SSL_REDIRECT"},
    )


class ApiArrivalMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            try:
                request.get_host()
            except DisallowedHost:
                return host_not_allowed(request)
            if (
                settings.SECURE_SSL_REDIRECT
                and not request.is_secure()
                and not is_same_host(request)
            ):
                return https_required()
        return self.get_response(request)
