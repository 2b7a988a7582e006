"""Webhook delivery to a real local HTTP receiver: signed per Standard Webhooks, retried
with backoff, every attempt logged, given up after the retry window."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from budgets.events import record_event
from budgets.events.delivery import backoff, new_secret, send_test
from budgets.events.endpoints import add_endpoint, failing_endpoints
from budgets.events.models import Delivery, DeliveryAttempt, Event
from budgets.events.worker import run_once

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.HAL0_WEBHOOK_BACKOFF_BASE_S = 0.01
    settings.HAL0_WEBHOOK_BACKOFF_MAX_S = 0.05


def event(agent: str = "hermes", type: str = "budget.warn") -> int:
    with transaction.atomic():
        event_id = record_event(
            type=type,
            scope_kind="persona",
            agent_id=agent,
            persona_id="coder",
            message="persona hermes/coder is at 80 % of its daily cap",
        )
    assert event_id is not None
    return event_id


def drain(rounds: int = 200) -> None:
    """Run worker turns until no delivery is pending (sleeping out the short backoffs)."""
    import time

    for _ in range(rounds):
        run_once("test-worker")
        if not Delivery.objects.filter(state=Delivery.State.PENDING).exists():
            return
        time.sleep(0.01)
    raise AssertionError("deliveries still pending")


def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(
    receiver: Any,
) -> None:
    r = receiver(statuses=[500, 502, 503])
    endpoint, _ = add_endpoint(url=r.url)
    event_id = event()
    drain()
    assert len(r.requests) == 4
    assert {req.headers["webhook-id"] for req in r.requests} == {str(event_id)}
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("delivered", 4)
    log = DeliveryAttempt.objects.filter(delivery=delivery).order_by("at", "id")
    assert [(a.status_code, a.ok) for a in log] == [
        (500, False),
        (502, False),
        (503, False),
        (200, True),
    ]
    assert all(a.latency_ms >= 0 and a.worker == "test-worker" for a in log)
    assert log[0].error.startswith("HTTP 500")
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    assert endpoint.last_success_at is not None


def test_the_signature_verifies_with_the_secret_and_not_with_another(receiver: Any) -> None:
    r = receiver()
    _, secret = add_endpoint(url=r.url)
    event_id = event()
    drain()
    (req,) = r.requests
    payload = Webhook(secret).verify(req.body, req.headers)
    assert (payload["id"], payload["type"]) == (event_id, "budget.warn")
    assert payload["scope"] == {"kind": "persona", "agent": "hermes", "persona": "coder"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(req.body, req.headers)
    tampered = req.body.replace(b"80 %", b"10 %")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, req.headers)


def test_after_the_retry_window_the_delivery_is_failed_and_the_endpoint_failing(
    receiver: Any, settings: Any
) -> None:
    settings.HAL0_WEBHOOK_RETRY_FOR_S = 0.2
    r = receiver(statuses=[500] * 1000)
    endpoint, _ = add_endpoint(url=r.url)
    event()
    drain(rounds=2000)
    delivery = Delivery.objects.get()
    assert delivery.state == "failed"
    assert delivery.attempts == len(r.requests) >= 1
    assert DeliveryAttempt.objects.count() == delivery.attempts
    if delivery.attempts >= settings.HAL0_WEBHOOK_FAILING_AFTER:
        assert failing_endpoints(settings.HAL0_WEBHOOK_FAILING_AFTER) == [endpoint]


def test_an_unreachable_endpoint_logs_the_network_error(settings: Any) -> None:
    settings.HAL0_WEBHOOK_RETRY_FOR_S = 0
    add_endpoint(url="http://127.0.0.1:9/hook")  # discard port: connection refused
    event()
    drain()
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert not attempt.ok
    assert "Connection refused" in attempt.error or "Errno" in attempt.error


def test_event_type_and_agent_filters_choose_the_endpoints(
    receiver: Any, make_persona: Any
) -> None:
    make_persona(agent_id="other", persona_id="coder")
    make_persona(agent_id="hermes", persona_id="coder")
    everything = receiver()
    only_exceeded = receiver()
    only_other = receiver()
    add_endpoint(url=everything.url)
    add_endpoint(url=only_exceeded.url, event_types=["budget.exceeded"])
    add_endpoint(url=only_other.url, agent_id="other")
    event("hermes", "budget.warn")
    event("other", "budget.exceeded")
    drain()
    assert len(everything.requests) == 2
    assert [json.loads(x.body)["type"] for x in only_exceeded.requests] == ["budget.exceeded"]
    assert [json.loads(x.body)["scope"]["agent"] for x in only_other.requests] == ["other"]


def test_slack_endpoints_get_a_text_message(receiver: Any) -> None:
    r = receiver()
    add_endpoint(url=r.url, format="slack")
    event()
    drain()
    body = json.loads(r.requests[0].body)
    assert body == {
        "text": ":warning: *budget.warn* persona hermes/coder is at 80 % of its daily cap"
    }


def test_send_test_event_reaches_only_that_endpoint(receiver: Any) -> None:
    one, two = receiver(), receiver()
    endpoint, secret = add_endpoint(url=one.url, event_types=["budget.warn"])
    add_endpoint(url=two.url)
    event_id = send_test(endpoint, actor="olivia")
    drain()
    assert two.requests == []
    payload = Webhook(secret).verify(one.requests[0].body, one.requests[0].headers)
    assert (payload["id"], payload["type"]) == (event_id, "test")
    assert Event.objects.get(id=event_id).message.endswith("sent by olivia")


def test_backoff_doubles_with_jitter_up_to_the_cap(settings: Any) -> None:
    settings.HAL0_WEBHOOK_BACKOFF_BASE_S = 5
    settings.HAL0_WEBHOOK_BACKOFF_MAX_S = 3600
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (40, 3600)]:
        waits = [backoff(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered
