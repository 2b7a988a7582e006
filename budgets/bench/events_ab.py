"""What events and metrics add to a check and a charge: the same calls with them on and off.

"On" is what the API does: the charge's event hook (the rules' statuses of every scope and
window, an outbox row when a threshold is crossed), the check and charge counters, and the
request-timing middleware around the call. "Off" is the same call through the same
middleware with the event hooks replaced by no-ops and the metrics off. On and off
alternate call by call (checks with checks, charges with charges), so both see the same
machine: on a shared, busy machine two series measured one after the other would compare
the load, not the hooks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from budgets.bench import inprocess
from budgets.monitoring import metrics
from budgets.monitoring import middleware as timing_middleware
from budgets.monitoring.middleware import RequestMetricsMiddleware
from budgets.services import budget as budget_service


def _noop(**_: Any) -> None:
    return None


_NO_EVENTS = SimpleNamespace(after_charge=_noop, after_refused_check=_noop)


@contextmanager
def _events_off() -> Iterator[None]:
    hooks = budget_service.events
    budget_service.events = _NO_EVENTS  # type: ignore[assignment]
    try:
        yield
    finally:
        budget_service.events = hooks


class _NoTiming:
    """Stands in for the request histogram: ``labels(...).observe(...)`` records nothing."""

    def labels(self, *_: str) -> _NoTiming:
        return self

    def observe(self, _: float) -> None:
        return None


@contextmanager
def _hooks_off() -> Iterator[None]:
    """No event hooks and no request timing: the "off" side of the pair."""
    timing = timing_middleware.REQUEST_SECONDS
    timing_middleware.REQUEST_SECONDS = _NoTiming()  # type: ignore[assignment]
    try:
        with _events_off():
            yield
    finally:
        timing_middleware.REQUEST_SECONDS = timing


def _through_middleware(call: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """``call`` wrapped the way a request is: timed by the metrics middleware."""
    request = RequestFactory().post("/api/bench")
    answer: dict[str, Any] = {}

    def view(_: HttpRequest) -> HttpResponse:
        answer.update(call())
        return HttpResponse(status=200)

    middleware = RequestMetricsMiddleware(view)

    def step() -> dict[str, Any]:
        answer.clear()
        middleware(request)
        return answer

    return step


def pair(
    agent_id: str, persona_id: str, charge_persona_id: str, samples: int
) -> dict[str, list[float]]:
    """Seconds per call: ``check_on``/``check_off`` and ``charge_on``/``charge_off``."""
    out: dict[str, list[float]] = {
        k: [] for k in ("check_on", "check_off", "charge_on", "charge_off")
    }
    tag = f"ab{time.monotonic_ns()}"

    def check_on() -> dict[str, Any]:
        result = inprocess.check(agent_id, persona_id)
        metrics.check_answered(str(result["decision"]))
        return result

    def charge_on() -> dict[str, Any]:
        result = inprocess.charge(agent_id, charge_persona_id, tag)
        metrics.charge_recorded()
        return result

    # Checks alternate with checks and charges with charges: a check that follows a
    # charge reads pages the charge has just written, and would be slower for that alone.
    checks: list[tuple[str, Callable[[], object], bool]] = [
        ("check_on", _through_middleware(check_on), True),
        ("check_off", _through_middleware(lambda: inprocess.check(agent_id, persona_id)), False),
    ]
    charges: list[tuple[str, Callable[[], object], bool]] = [
        ("charge_on", _through_middleware(charge_on), True),
        (
            "charge_off",
            _through_middleware(lambda: inprocess.charge(agent_id, charge_persona_id, tag)),
            False,
        ),
    ]
    for steps in (checks, charges):
        for i in range(inprocess.WARMUP + samples):
            for name, step, on in steps:
                with contextlib.nullcontext() if on else _hooks_off():
                    started = time.perf_counter()
                    step()
                    elapsed = time.perf_counter() - started
                if i >= inprocess.WARMUP:
                    out[name].append(elapsed)
    return out
