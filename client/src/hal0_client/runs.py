"""Runs: one task of an agent with a budget of its own (USD, tokens, wall-clock seconds).

```python
run = spend.run(label="fix the flaky test", budget_usd=2, budget_seconds=1800)
with run.guard(surface="openai", model="gpt-4o-mini", estimated_cost_usd=0.01) as call:
    call.record(llm(...))
run.close()
```

Every ``guard``, ``check`` and ``charge`` of the handle carries the run's id, so the run is
the first budget the service checks. When the run's budget stops a call,
``BudgetExceeded.scope == "run"`` and ``.limit`` is ``run_usd``, ``run_tokens`` or
``run_seconds``; the run waits in ``needs_budget`` until an operator extends it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Union

from hal0_client.results import ChargeResult, CheckResult, timestamp, usd

if TYPE_CHECKING:
    from hal0_client.client import Guard, SpendClient

Number = Union[int, float, Decimal]


def new_run_id() -> str:
    """A fresh run id: sent with the create, so a retried create finds the same run."""
    return "run_" + uuid.uuid4().hex


@dataclass(frozen=True)
class RunAmounts:
    """USD (exact), tokens and seconds; ``None`` where the run has no such limit."""

    usd: Decimal | None
    tokens: int | None
    seconds: Decimal | None

    @classmethod
    def from_json(cls, data: Any) -> RunAmounts:
        data = data if isinstance(data, Mapping) else {}
        tokens = data.get("tokens")
        return cls(
            usd=usd(data.get("usd")),
            tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
            seconds=usd(data.get("seconds")),  # an exact decimal, like money
        )


@dataclass(frozen=True)
class RunInfo:
    """A run as the service reports it (``GET .../runs/{id}``)."""

    id: str
    label: str
    state: str  # active | needs_budget | closed
    hard_cap: bool
    budget: RunAmounts
    spent: RunAmounts
    remaining: RunAmounts
    held_usd: Decimal
    charges: int
    exhausted_limit: str | None
    created_at: dt.datetime | None
    closed_at: dt.datetime | None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        run = data.get("run", data)
        return cls(
            id=str(run["id"]),
            label=str(run.get("label") or ""),
            state=str(run.get("state") or ""),
            hard_cap=bool(run.get("hard_cap", True)),
            budget=RunAmounts.from_json(run.get("budget")),
            spent=RunAmounts.from_json(run.get("spent")),
            remaining=RunAmounts.from_json(run.get("remaining")),
            held_usd=usd(run.get("held_usd")) or Decimal(0),
            charges=int(run.get("charges") or 0),
            exhausted_limit=run.get("exhausted_limit") or None,
            created_at=timestamp(run.get("created_at")),
            closed_at=timestamp(run.get("closed_at")),
            checkpoints=list(run.get("checkpoints") or []),
            raw=dict(run),
        )


class Run:
    """A handle on one run of the client's persona; ``with spend.run(...) as run:``
    closes it when the block ends."""

    def __init__(self, client: SpendClient, info: RunInfo) -> None:
        self._client = client
        self.id = info.id
        self.info = info

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.info.state}>"

    @property
    def _path(self) -> str:
        return self._client._runs_path(self.id)

    def guard(self, **options: Any) -> Guard:
        """``SpendClient.guard`` for a call of this run (it carries the run's id)."""
        return self._client.guard(run_id=self.id, **options)

    def check(self, estimated_cost_usd: Number | None = None, **options: Any) -> CheckResult:
        return self._client.check(estimated_cost_usd, run_id=self.id, **options)

    def charge(self, **options: Any) -> ChargeResult:
        return self._client.charge(run_id=self.id, **options)

    def refresh(self) -> RunInfo:
        """The run as it is now: spent, remaining, state, checkpoints."""
        self.info = RunInfo.from_json(self._client._http.request("GET", self._path))
        return self.info

    def extend(
        self,
        *,
        usd: Number | None = None,
        tokens: int | None = None,
        seconds: int | None = None,
    ) -> RunInfo:
        """Add to the run's budget (each new total is max(budget, used) + added).

        Needs an operator key: an agent may not raise its own run's budget. Sent once,
        never retried: an extension adds, so a retry after a lost answer could add twice
        (``refresh()`` tells whether it went through).
        """
        body = {
            k: v
            for k, v in (("usd", usd), ("tokens", tokens), ("seconds", seconds))
            if v is not None
        }
        answer = self._client._http.request("POST", f"{self._path}/extend", body, once=True)
        self.info = RunInfo.from_json(answer)
        return self.info

    def close(self) -> RunInfo:
        """Close the run: checks naming it are refused from now on (a retry is safe)."""
        self.info = RunInfo.from_json(self._client._http.request("POST", f"{self._path}/close"))
        return self.info

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()
