"""Who may read ``/metrics``: an operator API key as a Bearer token, or a client address
in ``HAL0_METRICS_ALLOW`` (addresses or networks, e.g. ``127.0.0.1,10.0.0.0/8``)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed

from budgets.auth import _lookup


@lru_cache(maxsize=8)
def _networks(
    allow: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(a.strip(), strict=False) for a in allow if a.strip())


def address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.HAL0_METRICS_ALLOW)))


def operator_key_sent(request: HttpRequest) -> bool | None:
    """True for a live operator key, False for any other key, None when none was sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not raw.strip():
        return False
    try:
        key = _lookup(raw.strip())
    except AuthenticationFailed:
        return False
    return key.scope == key.Scope.OPERATOR


def may_read_metrics(request: HttpRequest) -> tuple[bool, int]:
    """(allowed, status to answer when not: 401 without a key, 403 with a wrong one)."""
    if address_allowed(request.META.get("REMOTE_ADDR", "")):
        return True, 200
    sent = operator_key_sent(request)
    if sent:
        return True, 200
    return False, 401 if sent is None else 403
