"""What the client raises. Every error is a ``SpendError``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal0_client.results import CheckResult


class SpendError(Exception):
    """Base class of every error the client raises."""


class SpendUnavailable(SpendError):
    """The service could not be reached, or kept answering 5xx, after the retries.

    With ``on_unavailable="block"`` (the default) a guard raises this before the upstream
    call is made.
    """


class ApiError(SpendError):
    """The service answered with an error envelope (a 4xx, or a 5xx that was not retried).

    ``code`` is the service's stable error code (``budget.invalid_charge``,
    ``hold.conflict``, ``auth.invalid``, ...); ``details`` its context.
    """

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


class BudgetExceeded(SpendError):
    """A hard cap refused the call; raised by a guard before the upstream call is made.

    ``reason`` is the service's text, ``limit`` which rule decided (``daily``,
    ``per_call``, ``daily_tokens``, ``run_usd``, ...), ``scope`` whose cap it was
    (``persona``, ``agent``, ``platform``, ``run``; ``None`` when the service does not
    say), ``resets_at`` when that window starts again (``None`` for caps that never reset).
    """

    def __init__(
        self,
        reason: str,
        *,
        limit: str | None,
        scope: str | None,
        resets_at: dt.datetime | None,
        check: CheckResult,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.scope = scope
        self.resets_at = resets_at
        self.check = check


class UsageNotFound(SpendError, ValueError):
    """``record(response)`` was given an object with no usage the client can read."""
