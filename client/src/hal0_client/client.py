"""``SpendClient``: check, charge, release, budget, and ``guard`` around an upstream call."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from decimal import Decimal
from typing import (
    Any,
    Union,
)
from urllib.parse import quote

from hal0_client.errors import ApiError, BudgetExceeded, SpendError, SpendUnavailable
from hal0_client.results import (
    Budget,
    ChargeResult,
    CheckResult,
    Hold,
    Release,
    Usage,
    timestamp,
)
from hal0_client.runs import Run, RunInfo, new_run_id
from hal0_client.transport import Transport
from hal0_client.usage import StreamUsage, extract_usage

logger = logging.getLogger("hal0_client")

Number = Union[int, float, Decimal]

ON_UNAVAILABLE = ("block", "allow")


def new_request_id() -> str:
    """A fresh id for one upstream call: its reserve and its charge both carry it."""
    return "req_" + uuid.uuid4().hex


def _put(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    # Only what the caller gave: the service tells an absent field from a null one.
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


class SpendClient:
    """The spend service for one persona of one agent.

    ``on_unavailable`` is what a ``guard`` does when the service cannot be reached (after
    the retries): ``"block"`` (default) raises ``SpendUnavailable`` before the upstream
    call; ``"allow"`` lets the call go unguarded, logs a warning, and queues its charge
    in memory (at most ``max_pending``; ``flush()`` sends them, and each new guard tries
    first). The plain methods (``check``, ``charge``, ...) always raise.

    Thread-safe: one client may serve many threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        key: str | None,
        agent: str,
        persona: str,
        timeout: float = 5.0,
        on_unavailable: str = "block",
        retries: int = 3,
        backoff_s: float = 0.2,
        max_pending: int = 1000,
    ) -> None:
        if on_unavailable not in ON_UNAVAILABLE:
            raise ValueError(f"on_unavailable must be one of {ON_UNAVAILABLE}")
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.agent = agent
        self.persona = persona
        self.on_unavailable = on_unavailable
        self.max_pending = max_pending
        self._http = Transport(
            base_url, key=key, timeout=timeout, retries=retries, backoff_s=backoff_s
        )
        self._base = (
            f"/api/agents/{quote(agent, safe='')}/personas/{quote(persona, safe='')}/budget"
        )
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()

    # -----------------------------------------------------------------------------------
    # the API, one method per endpoint

    def check(
        self,
        estimated_cost_usd: Number | None = None,
        *,
        reserve: bool = False,
        request_id: str | None = None,
        hold_ttl_s: int | None = None,
        surface: str | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        run_id: str | None = None,
    ) -> CheckResult:
        """May the persona spend this? With ``reserve=True`` also take a hold.

        Give a dollar estimate, or ``model`` (+ ``surface``) with ``input_tokens`` and
        ``max_output_tokens`` for the service to price. A reserve always carries a
        ``request_id`` (a new one if none is given), so a retried reserve never takes a
        second hold.
        """
        if reserve and request_id is None:
            request_id = new_request_id()
        body = _put(
            {},
            estimated_cost_usd=estimated_cost_usd,
            surface=surface,
            model=model,
            input_tokens=input_tokens,
            max_output_tokens=max_output_tokens,
            run_id=run_id,
            hold_ttl_s=hold_ttl_s,
        )
        if reserve:
            body.update(reserve=True, request_id=request_id)
        return CheckResult.from_json(self._http.request("POST", f"{self._base}/check", body))

    def charge(
        self,
        *,
        surface: str,
        model: str,
        cost_usd: Number | None = None,
        request_id: str | None = None,
        hold_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        run_id: str | None = None,
    ) -> ChargeResult:
        """Record what a call cost. Retried safely: the same ``request_id`` on every try.

        Without ``cost_usd`` the service prices the token counts (a reported cost always
        wins). Without ``request_id`` a new one is made for this charge.
        """
        body = self._charge_body(
            surface=surface,
            model=model,
            cost_usd=cost_usd,
            request_id=request_id or new_request_id(),
            hold_id=hold_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            run_id=run_id,
        )
        return self._send_charge(body)

    def release(self, hold_id: str) -> Release:
        """Give a hold back (the call was not made, or failed without cost)."""

        def released_by_first_attempt(error: ApiError) -> dict[str, Any] | None:
            # A retry after a lost answer finds the hold released by the first attempt.
            if error.code == "hold.resolved" and error.details.get("state") == "released":
                return {"hold": {"id": hold_id, "state": "released"}}
            return None

        answer = self._http.request(
            "POST",
            f"{self._base}/holds/{quote(hold_id, safe='')}/release",
            accept_on_retry=released_by_first_attempt,
        )
        hold = answer.get("hold") or {}
        return Release(hold_id=str(hold.get("id", hold_id)), state=str(hold.get("state", "")))

    def budget(self) -> Budget:
        """Caps, spend per window, headroom, held amount, status, next resets."""
        return Budget.from_json(self._http.request("GET", self._base))

    # -----------------------------------------------------------------------------------
    # runs (hal0_client.runs)

    def run(
        self,
        *,
        label: str = "",
        budget_usd: Number | None = None,
        budget_tokens: int | None = None,
        budget_seconds: int | None = None,
        hard_cap: bool | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start a run with its own budget; its ``guard()`` calls carry its id.

        A run id is made here when none is given, so a retried create finds the run the
        first attempt made (the same id and body answer the same run).
        """
        body = _put(
            {"run_id": run_id or new_run_id()},
            label=label or None,
            budget_usd=budget_usd,
            budget_tokens=budget_tokens,
            budget_seconds=budget_seconds,
            hard_cap=hard_cap,
        )
        return Run(self, RunInfo.from_json(self._http.request("POST", self._runs_path(), body)))

    def get_run(self, run_id: str) -> Run:
        """A handle on an existing run of this persona (e.g. after a restart)."""
        return Run(self, RunInfo.from_json(self._http.request("GET", self._runs_path(run_id))))

    def _runs_path(self, run_id: str | None = None) -> str:
        path = self._base.removesuffix("/budget") + "/runs"
        return path if run_id is None else f"{path}/{quote(run_id, safe='')}"

    # -----------------------------------------------------------------------------------
    # the guard

    def guard(
        self,
        *,
        surface: str,
        model: str,
        estimated_cost_usd: Number | None = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        hold_ttl_s: int | None = None,
        request_id: str | None = None,
        run_id: str | None = None,
    ) -> Guard:
        """``with spend.guard(...) as call:`` check + reserve, then charge on exit.

        Reserve by dollars (``estimated_cost_usd``) or by ``input_tokens`` +
        ``max_output_tokens`` for ``model`` (the service prices them). Raises
        ``BudgetExceeded`` on entry when a hard cap refuses, before the upstream call.
        Inside, ``call.record(response)`` (or ``call.record(cost_usd=..., ...)``). On exit:
        a recorded call is charged with the hold's id under the guard's ``request_id``
        (the same on every retry); an exception before ``record`` releases the hold and
        propagates; leaving without ``record`` releases the hold and logs a warning.
        """
        return Guard(
            self,
            GuardedCall(
                surface=surface,
                model=model,
                request_id=request_id or new_request_id(),
                run_id=run_id,
            ),
            estimate=_put(
                {},
                estimated_cost_usd=estimated_cost_usd,
                input_tokens=input_tokens,
                max_output_tokens=max_output_tokens,
                hold_ttl_s=hold_ttl_s,
            ),
        )

    # -----------------------------------------------------------------------------------
    # charges waiting for the service (on_unavailable="allow", or a charge after the call)

    @property
    def pending(self) -> int:
        """How many charges wait in memory for the service."""
        return len(self._pending)

    def flush(self) -> int:
        """Send the queued charges, oldest first; returns how many were recorded.

        Stops at the first that finds the service still unavailable (it stays queued).
        A charge the service refuses (4xx) cannot succeed later: it is logged with its
        whole body and dropped.
        """
        sent = 0
        with self._flush_lock:
            while True:
                with self._pending_lock:
                    if not self._pending:
                        return sent
                    body = self._pending.popleft()
                try:
                    self._send_charge(body)
                except SpendUnavailable:
                    with self._pending_lock:
                        self._pending.appendleft(body)
                    return sent
                except ApiError as exc:
                    logger.error("hal0: queued charge refused (%s), dropped: %r", exc, body)
                    continue
                sent += 1

    def _queue(self, body: dict[str, Any]) -> None:
        with self._pending_lock:
            if len(self._pending) >= self.max_pending:
                dropped = self._pending.popleft()
                # The queue is bounded so an outage cannot eat the agent's memory; the
                # dropped charge is logged whole so an operator can still record it.
                logger.error(
                    "hal0: %d charges queued, the oldest is dropped: %r",
                    self.max_pending,
                    dropped,
                )
            self._pending.append(body)

    # -----------------------------------------------------------------------------------

    def _charge_body(self, **fields: Any) -> dict[str, Any]:
        return _put({}, **fields)

    def _send_charge(self, body: dict[str, Any]) -> ChargeResult:
        return ChargeResult.from_json(self._http.request("POST", f"{self._base}/charge", body))

    def _resets_at_of(self, check: CheckResult) -> dt.datetime | None:
        """When the refusing window starts again (``None`` for caps that never reset)."""
        given = check.raw.get("resets_at")
        limit = check.limit or ""
        window = next((w for w in ("daily", "monthly") if limit.startswith(w)), None)
        if isinstance(given, str):
            return timestamp(given)
        if isinstance(given, dict):
            return timestamp(given.get(window or ""))
        if window is None:
            return None
        # The check's answer does not carry it: the persona's windows do (the same
        # calendar for every scope unless an operator set another timezone there).
        try:
            return self.budget().resets_at.get(window)
        except SpendError:
            return None


class GuardedCall:
    """What a guard yields: record the call's usage here.

    ``request_id`` is the id of this call (its reserve and its charge); ``hold`` and
    ``check`` the reserve's answer (``None`` when the call went unguarded); ``charge``
    the charge's answer after the block (``None`` when it was queued or not made).
    """

    def __init__(self, *, surface: str, model: str, request_id: str, run_id: str | None) -> None:
        self.surface = surface
        self.model = model
        self.request_id = request_id
        self.run_id = run_id
        self.check: CheckResult | None = None
        self.guarded = False
        self.usage: Usage | None = None
        self.charge: ChargeResult | None = None
        self.queued = False

    @property
    def hold(self) -> Hold | None:
        return self.check.hold if self.check is not None else None

    @property
    def hold_id(self) -> str | None:
        return self.hold.id if self.hold is not None else None

    def record(
        self,
        response: Any = None,
        *,
        cost_usd: Number | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        model: str | None = None,
    ) -> Usage:
        """What the call used: from ``response`` (OpenAI/Anthropic/OpenRouter object or
        dict), from the keywords, or both (keywords win). Once per guard.
        """
        if self.usage is not None:
            raise SpendError("record() was already called for this guarded call")
        base = extract_usage(response) if response is not None else Usage()
        usage = Usage(
            input_tokens=input_tokens if input_tokens is not None else base.input_tokens,
            output_tokens=output_tokens if output_tokens is not None else base.output_tokens,
            cache_read_tokens=cache_read_tokens
            if cache_read_tokens is not None
            else base.cache_read_tokens,
            cache_write_tokens=cache_write_tokens
            if cache_write_tokens is not None
            else base.cache_write_tokens,
            cost_usd=Decimal(str(cost_usd)) if cost_usd is not None else base.cost_usd,
            model=model or base.model,
        )
        if usage.empty:
            raise SpendError("record() needs a response with usage, cost_usd or token counts")
        self.usage = usage
        return usage

    def stream(self, chunks: Iterable[Any]) -> Iterator[Any]:
        """Pass a stream through and record its final usage when it ends.

        ``for chunk in call.stream(client.chat.completions.create(..., stream=True,
        stream_options={"include_usage": True})):``. Stopped early, it records the usage
        seen so far (the upstream bills what it generated).
        """
        tracker = StreamUsage()
        try:
            for chunk in chunks:
                tracker.feed(chunk)
                yield chunk
        finally:
            self._record_stream(tracker)

    async def astream(self, chunks: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """``stream`` for an async iterator (``async for chunk in call.astream(...)``)."""
        tracker = StreamUsage()
        try:
            async for chunk in chunks:
                tracker.feed(chunk)
                yield chunk
        finally:
            self._record_stream(tracker)

    def _record_stream(self, tracker: StreamUsage) -> None:
        if tracker.usage is not None and self.usage is None:
            self.usage = tracker.usage

    def _charge_fields(self) -> dict[str, Any]:
        usage = self.usage or Usage()
        return {
            "surface": self.surface,
            "model": self.model,
            "cost_usd": usage.cost_usd,
            "request_id": self.request_id,
            "hold_id": self.hold_id,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "run_id": self.run_id,
        }


class Guard:
    """The context manager ``SpendClient.guard`` returns (``with`` / ``async with``)."""

    def __init__(self, client: SpendClient, call: GuardedCall, *, estimate: dict[str, Any]):
        self._client = client
        self.call = call
        self._estimate = estimate

    def __enter__(self) -> GuardedCall:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(exc)

    def open(self) -> GuardedCall:
        """Check with a reserve; raise before the upstream call when refused."""
        client, call = self._client, self.call
        if client.pending:
            # Charges from an outage first, so this check sees the spend they report.
            client.flush()
        try:
            check = client.check(
                reserve=True,
                request_id=call.request_id,
                surface=call.surface,
                model=call.model,
                run_id=call.run_id,
                **self._estimate,
            )
        except SpendUnavailable as exc:
            if client.on_unavailable == "block":
                raise
            logger.warning(
                "hal0: spend service unavailable (%s); the %s call %s goes ahead UNGUARDED "
                "(on_unavailable='allow'), its charge will be queued if still needed",
                exc,
                call.model,
                call.request_id,
            )
            return call
        if not check.allowed:
            raise BudgetExceeded(
                check.reason or "refused by the spend service",
                limit=check.limit,
                scope=check.scope,
                resets_at=client._resets_at_of(check),
                check=check,
            )
        if check.decision == "warn":
            logger.warning("hal0: %s (warn-only cap; the call goes ahead)", check.reason)
        call.check = check
        call.guarded = True
        return call

    def close(self, exc: BaseException | None) -> None:
        """Charge what was recorded, or release the hold; never hide the block's error."""
        client, call = self._client, self.call
        if call.usage is None:
            if call.hold is not None:
                try:
                    client.release(call.hold.id)
                except SpendError as error:
                    # It expires by itself at hold.expires_at.
                    logger.warning("hal0: could not release %s: %s", call.hold.id, error)
            if exc is None:
                logger.warning(
                    "hal0: guarded call %s ended without record(): nothing charged, hold released",
                    call.request_id,
                )
            return
        body = client._charge_body(**call._charge_fields())
        try:
            call.charge = client._send_charge(body)
        except SpendUnavailable as error:
            # The upstream call was made: its cost must not be lost, whatever the policy.
            client._queue(body)
            call.queued = True
            logger.error(
                "hal0: charge %s not recorded (%s); queued, %d waiting for flush()",
                call.request_id,
                error,
                client.pending,
            )
        except ApiError:
            if exc is None:
                raise
            logger.exception("hal0: charge %s refused", call.request_id)

    async def __aenter__(self) -> GuardedCall:
        return await asyncio.to_thread(self.open)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await asyncio.to_thread(self.close, exc)
