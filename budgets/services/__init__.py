"""Budget services: the functions the API, the admin and the commands call."""

from budgets.services.budget import (
    budget_charge,
    budget_check,
    budget_check_by_id,
    budget_put,
    budget_state,
    hold_release,
)
from budgets.services.pause import budget_pause

__all__ = [
    "budget_charge",
    "budget_check",
    "budget_check_by_id",
    "budget_pause",
    "budget_put",
    "budget_state",
    "hold_release",
]
