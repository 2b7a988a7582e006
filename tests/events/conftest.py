"""Fixtures for the events tests: a persona with a daily cap and a clean process memo."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from budgets.events.emit import seen


@pytest.fixture(autouse=True)
def fresh_memo() -> Iterator[None]:
    """Each test starts as a new process would: no event keys remembered."""
    seen.clear()
    yield
    seen.clear()


@pytest.fixture
def capped(make_persona: Callable[..., Any]) -> Any:
    """hermes/coder with a daily cap of 1 USD (warn at the default 80 %)."""
    return make_persona(persona_id="coder", budget_toml="daily_usd = 1.0\n")


@pytest.fixture
def receiver() -> Iterator[Any]:
    """``receiver(statuses=[500, 500], hold_first_s=0)``: started; stopped at teardown."""
    from tests.events.receiver import Receiver

    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        r = Receiver(**kwargs).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()
