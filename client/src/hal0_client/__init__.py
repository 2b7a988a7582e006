"""Python client for hal0 spend control: check -> call -> charge, safely.

```python
from hal0_client import SpendClient, BudgetExceeded
spend = SpendClient("http://127.0.0.1:8000", key=KEY, agent="hermes", persona="coder")
with spend.guard(surface="openai", model="gpt-4o-mini", estimated_cost_usd=0.01) as call:
    call.record(openai_client.chat.completions.create(...))
```
"""

from hal0_client.aio import AsyncSpendClient
from hal0_client.client import Guard, GuardedCall, SpendClient, new_request_id
from hal0_client.errors import (
    ApiError,
    BudgetExceeded,
    SpendError,
    SpendUnavailable,
    UsageNotFound,
)
from hal0_client.results import (
    Budget,
    ChargeResult,
    ChargeRow,
    CheckResult,
    Hold,
    Release,
    Usage,
)
from hal0_client.runs import Run, RunAmounts, RunInfo, new_run_id
from hal0_client.usage import StreamUsage, extract_usage, usage_from_stream

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AsyncSpendClient",
    "Budget",
    "BudgetExceeded",
    "ChargeResult",
    "ChargeRow",
    "CheckResult",
    "Guard",
    "GuardedCall",
    "Hold",
    "Release",
    "Run",
    "RunAmounts",
    "RunInfo",
    "SpendClient",
    "SpendError",
    "SpendUnavailable",
    "StreamUsage",
    "Usage",
    "UsageNotFound",
    "extract_usage",
    "new_request_id",
    "new_run_id",
    "usage_from_stream",
]
