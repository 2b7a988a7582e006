"""24 concurrent charges across 2 gunicorn workers cross 80 % of a daily cap: the real
receiver gets exactly one budget.warn for that window, and a new one in the next."""

from __future__ import annotations

import datetime as dt
import json
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from budgets.events.endpoints import add_endpoint
from budgets.events.models import Delivery, Event
from budgets.services import budget_charge
from hal0.money import to_nanos
from tests.process_support import Gunicorn, child_env, manage, wait_for

CLIENTS = 24


def post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return int(response.status)


@pytest.mark.django_db(transaction=True)
def test_24_concurrent_charges_send_exactly_one_warn_then_one_in_the_next_window(
    make_persona: Any, receiver: Any, data_dir: Path
) -> None:
    # 24 charges of 0.05 against a cap of 1.0: 80 % is crossed at the 16th, and the
    # 17th-24th are all past it too. Each may try the insert; one event results.
    persona = make_persona(persona_id="coder", budget_toml="daily_usd = 1.0\n")
    r = receiver()
    add_endpoint(url=r.url, event_types=["budget.warn"])
    server = Gunicorn(data_dir, workers=2).wait_ready()
    worker = manage("worker", "--poll", "0.1", env=child_env(data_dir))
    try:
        url = f"{server.url}/api/agents/hermes/personas/coder/budget/charge"
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(
                pool.map(
                    lambda n: post(
                        url, {"surface": "s", "model": "m", "cost_usd": 0.05, "request_id": f"r{n}"}
                    ),
                    range(CLIENTS),
                )
            )
        assert statuses == [200] * CLIENTS
        wait_for(lambda: Delivery.objects.filter(state="delivered").count() == 1)
        # Give a duplicate every chance to show up before counting.
        wait_for(lambda: not Delivery.objects.filter(state="pending").exists())
        assert Event.objects.filter(type="budget.warn").count() == 1
        assert len(r.requests) == 1
        first = json.loads(r.requests[0].body)
        today = timezone.now().date()
        assert (first["type"], first["window"]) == ("budget.warn", "daily")
        assert first["scope"] == {"kind": "persona", "agent": "hermes", "persona": "coder"}

        # The next day's window gets its own warn (a charge dated tomorrow).
        tomorrow = timezone.now() + dt.timedelta(days=1)
        budget_charge(
            persona=persona,
            surface="s",
            model="m",
            cost_nanos=to_nanos(0.9),
            request_id="next-day",
            now=tomorrow,
        )
        wait_for(lambda: len(r.requests) == 2)
        second = json.loads(r.requests[1].body)
        assert second["type"] == "budget.warn"
        assert second["id"] != first["id"]
        warns = Event.objects.filter(type="budget.warn").order_by("id")
        assert [e.window_start for e in warns] == [today, tomorrow.date()]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=20)
        server.stop()
