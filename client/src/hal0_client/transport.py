"""HTTP with bounded, safe retries (standard library only).

Retried: connection errors (refused, reset, dropped before the answer, timeouts) and 5xx
answers, up to ``retries`` more attempts with exponential backoff and jitter. Never
retried: a 4xx, which would only fail the same way again.

Retrying is safe because every request the client sends is idempotent on the service:
a charge by its ``request_id``, a reserve by its ``request_id`` (the client always sends
one), a release answers ``hold.resolved`` when the first attempt did release (the client
reads that as done), and reads change nothing.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable

from hal0_client.errors import ApiError, SpendError, SpendUnavailable

logger = logging.getLogger("hal0_client")

USER_AGENT = "hal0-client/0.1"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A JSON number: the service parses it back to an exact decimal. Money amounts
        # here have at most 9 decimals, well inside a double's 15-17 significant digits.
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, default=_json_default, separators=(",", ":")).encode()


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        key: str | None,
        timeout: float,
        retries: int,
        backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        # No proxies from the environment: the spend service usually sits next to the
        # agent, and an HTTP_PROXY meant for the upstream must not carry its key.
        # No redirects followed either: urllib would turn a redirected POST into a GET of
        # another URL and hand its answer back as if it were the check's.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _RefuseRedirects()
        )

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        accept_on_retry: Callable[[ApiError], dict[str, Any] | None] | None = None,
        once: bool = False,
    ) -> dict[str, Any]:
        """Send, retrying what is safe; the answer's JSON object.

        ``accept_on_retry``: for an error answered to a retry (not to the first attempt),
        may turn it into a success (a release whose first attempt did go through).
        ``once``: a request that is not idempotent (a run's extension adds): one attempt.
        """
        data = encode(body) if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        url = self.base_url + path
        last: str = ""
        attempts = 1 if once else self.retries + 1
        for attempt in range(attempts):
            if attempt:
                self._backoff(attempt)
            try:
                return self._once(method, url, data, headers)
            except _Retryable as exc:
                last = str(exc)
                logger.info(
                    "hal0 %s %s: %s (attempt %d of %d)",
                    method,
                    path,
                    last,
                    attempt + 1,
                    attempts,
                )
            except ApiError as exc:
                if attempt and accept_on_retry is not None:
                    accepted = accept_on_retry(exc)
                    if accepted is not None:
                        return accepted
                raise
        raise SpendUnavailable(
            f"spend service at {self.base_url} unavailable after {attempts} attempt(s): {last}"
        )

    def _backoff(self, attempt: int) -> None:
        # 1x, 2x, 4x ... the base, each scaled by 0.5-1.0 so that agents that failed
        # together do not retry together. Not for security: plain random is fine.
        delay = self.backoff_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
        self._sleep(delay)

    def _once(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        # The scheme is http(s): checked when the transport was made.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, DNS), resets, RemoteDisconnected, timeouts, IncompleteRead.
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if status >= 500:
            raise _Retryable(f"HTTP {status}")
        if 300 <= status < 400:
            raise ApiError(
                status,
                "request.redirected",
                f"{url} answered a redirect; use the address it names as base_url",
            )
        payload = _decode(raw)
        if status >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                details = error.get("details")
                raise ApiError(
                    status,
                    str(error.get("code", "error")),
                    str(error.get("message", "")),
                    details if isinstance(details, dict) else None,
                )
            raise ApiError(status, "error", f"HTTP {status} without an error envelope")
        if not isinstance(payload, dict):
            raise SpendError(f"{url}: expected a JSON object, got {raw[:80]!r}")
        return payload


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


class _Retryable(Exception):
    """A failure another attempt may not meet: connection trouble or a 5xx."""
