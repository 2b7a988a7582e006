"""``AsyncSpendClient``: the same API for asyncio agents, ``async with spend.guard(...)``.

Each request runs the blocking client in a worker thread (``asyncio.to_thread``), so the
event loop never waits on the network. Why threads and not an async HTTP client: the
standard library has none, and the client must stay dependency-free; writing HTTP/1.1
over ``asyncio`` streams by hand would be a second transport (timeouts, retries, TLS,
error envelopes) to keep right. A check or a charge is one short request, so a thread
per call in flight costs little next to the upstream LLM call it guards; the retries'
backoff sleeps happen in that thread too, never on the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hal0_client.client import Guard, Number, SpendClient
from hal0_client.results import Budget, ChargeResult, CheckResult, Release


class AsyncSpendClient:
    """``SpendClient`` with awaitable methods; same arguments, same answers."""

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
        self.sync = SpendClient(
            base_url,
            key=key,
            agent=agent,
            persona=persona,
            timeout=timeout,
            on_unavailable=on_unavailable,
            retries=retries,
            backoff_s=backoff_s,
            max_pending=max_pending,
        )

    async def check(self, estimated_cost_usd: Number | None = None, **fields: Any) -> CheckResult:
        return await asyncio.to_thread(self.sync.check, estimated_cost_usd, **fields)

    async def charge(self, **fields: Any) -> ChargeResult:
        return await asyncio.to_thread(lambda: self.sync.charge(**fields))

    async def release(self, hold_id: str) -> Release:
        return await asyncio.to_thread(self.sync.release, hold_id)

    async def budget(self) -> Budget:
        return await asyncio.to_thread(self.sync.budget)

    async def flush(self) -> int:
        return await asyncio.to_thread(self.sync.flush)

    @property
    def pending(self) -> int:
        return self.sync.pending

    def guard(self, **fields: Any) -> Guard:
        """``async with spend.guard(...) as call:``; see ``SpendClient.guard``."""
        return self.sync.guard(**fields)
