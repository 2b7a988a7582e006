"""/metrics under gunicorn with 2 workers reports the sum over both (multiprocess mode),
whichever worker answers the scrape."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from budgets.apikeys import create_key
from tests.monitoring.test_metrics import parse, value
from tests.process_support import Gunicorn, wait_for

REQUESTS = 40


def call(url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, response.read()


@pytest.mark.django_db(transaction=True)
def test_metrics_under_two_gunicorn_workers_are_the_sum_of_both(
    make_persona: Any, data_dir: Path, tmp_path: Path
) -> None:
    make_persona(persona_id="coder", budget_toml="daily_usd = 100\n")
    key = create_key(scope="operator", name="metrics")[1]
    folder = tmp_path / "prometheus"
    (folder / "stale").mkdir(parents=True)
    (folder / "counter_999999.db").write_bytes(b"left over from a previous run")
    server = Gunicorn(data_dir, workers=2, PROMETHEUS_MULTIPROC_DIR=str(folder)).wait_ready()
    try:
        assert not (folder / "counter_999999.db").exists()  # wiped at start
        check = f"{server.url}/api/agents/hermes/personas/coder/budget/check"
        sent = 0

        def batch() -> bool:
            # Concurrent checks until both workers answered some (the second one may still
            # be booting at first): each writes its own files, named by its pid.
            nonlocal sent
            with ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(
                        lambda _: call(check, key, {"estimated_cost_usd": 0.01})[0],
                        range(REQUESTS),
                    )
                )
            assert statuses == [200] * REQUESTS
            sent += REQUESTS
            pids = {p.stem.rsplit("_", 1)[1] for p in folder.glob("histogram_*.db")}
            return len(pids) == 2

        wait_for(batch, timeout=60, every=0)
        route = "api/agents/<str:agent_id>/personas/<str:persona_id>/budget/check"
        for _ in range(6):  # whichever worker answers the scrape, the figure is the sum
            _, body = call(f"{server.url}/metrics", key)
            m = parse(body.decode())
            assert value(m, "hal0_checks_total", decision="allow") == sent
            count = value(
                m,
                "hal0_http_request_duration_seconds_count",
                method="POST",
                route=route,
                status="200",
            )
            assert count == sent
    finally:
        server.stop()
