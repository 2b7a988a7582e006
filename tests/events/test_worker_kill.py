"""A worker killed in the middle of a delivery: its lease runs out and a restarted
worker delivers the event, with the same webhook-id."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from budgets.events import record_event
from budgets.events.endpoints import add_endpoint
from budgets.events.models import Delivery
from tests.process_support import child_env, manage, wait_for


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_and_restarted_delivers(receiver: Any, data_dir: Path) -> None:
    # The receiver holds the first request open; the worker is killed while it waits.
    r = receiver(hold_first_s=60)
    add_endpoint(url=r.url)
    with transaction.atomic():
        event_id = record_event(
            type="budget.exceeded", scope_kind="platform", message="the platform hit its cap"
        )
    env = child_env(data_dir, HAL0_WEBHOOK_LEASE_S="2", HAL0_WEBHOOK_TIMEOUT_S="30")
    first = manage("worker", "--poll", "0.1", env=env)
    try:
        wait_for(lambda: len(r.requests) == 1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    delivery = Delivery.objects.get()
    # Killed mid-send: nothing was recorded as done, the lease is still on the row.
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.locked_by.split(":")[1] == str(first.pid)

    second = manage("worker", "--poll", "0.1", env=env)
    try:
        wait_for(
            lambda: Delivery.objects.filter(state=Delivery.State.DELIVERED).exists(), timeout=30
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=20)
    assert len(r.requests) == 2
    assert [req.headers["webhook-id"] for req in r.requests] == [str(event_id)] * 2
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.log.get().status_code == 200
