"""Fixtures of the client's tests: one live service per run, a fresh persona per test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from client_support import FaultyProxy, LiveService

from hal0_client import SpendClient

_names = itertools.count(1)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The real service (gunicorn, real database, real data folder) on a free port."""
    live = LiveService(Path(tmp_path_factory.mktemp("hal0-client-service")))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def persona(service: LiveService) -> Callable[[str], str]:
    """``persona("daily_usd = 1.0")``: a fresh persona of hermes with that budget."""

    def make(budget_toml: str = "") -> str:
        return service.persona(f"client{next(_names)}", budget_toml)

    return make


@pytest.fixture
def proxy(service: LiveService) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(service.port)
    try:
        yield faulty
    finally:
        faulty.close()


@pytest.fixture
def client_for(service: LiveService) -> Callable[..., SpendClient]:
    """``client_for(persona_id, base_url=..., **options)``: an agent key's client."""

    def make(persona_id: str, *, base_url: str | None = None, **options: object) -> SpendClient:
        options.setdefault("backoff_s", 0.01)
        return SpendClient(
            base_url or service.base_url,
            key=service.agent_key,
            agent="hermes",
            persona=persona_id,
            **options,  # type: ignore[arg-type]
        )

    return make
