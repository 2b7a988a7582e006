"""Webhook delivery: claim due deliveries, send them signed, log every attempt, retry.

At least once. A delivery is claimed by a conditional UPDATE that sets a lease
(``locked_until``); SQLite has no ``SKIP LOCKED``, and the same statement works on both
databases: of two workers that race for a row, the UPDATE of one matches it and the other
matches nothing. Sending happens outside any transaction. A worker killed mid-send leaves
a lease that runs out, and the delivery is sent again by whichever worker comes next, with
the same ``webhook-id`` so the receiver can drop the duplicate.

Failures are retried with exponential backoff and jitter (base x 2^n, capped), until
``HAL0_WEBHOOK_RETRY_FOR_S`` (24 h) after the event, then the delivery is ``failed``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from budgets.events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from budgets.events.outbox import event_json

log = logging.getLogger(__name__)

USER_AGENT = "hal0-spend-webhooks/1"
MAX_ERROR = 500


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def body_of(event: Event, endpoint: WebhookEndpoint) -> str:
    """What is POSTed: the event JSON, or a Slack message for ``slack`` endpoints."""
    if endpoint.format == WebhookEndpoint.Format.SLACK:
        icon = {"budget.exceeded": ":rotating_light:", "budget.blocked": ":no_entry:"}.get(
            event.type, ":warning:" if event.type == "budget.warn" else ":information_source:"
        )
        return json.dumps({"text": f"{icon} *{event.type}* {event.message}"})
    return json.dumps(event_json(event), separators=(",", ":"))


def signed_headers(secret: str, msg_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with the endpoint's secret."""
    at = at.astimezone(dt.UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str


def post(url: str, body: str, headers: dict[str, str]) -> Outcome:
    """POST and report; never raises for the receiver's faults."""
    request = urllib.request.Request(  # noqa: S310 - operators configure http(s) URLs only
        url,
        data=body.encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.HAL0_WEBHOOK_TIMEOUT_S
        ) as response:
            status = response.status
            response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(exc).__name__}: {reason}"
    latency_ms = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    return Outcome(ok, status, latency_ms, error[:MAX_ERROR])


def backoff(attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` failures: a random point in the upper
    half of a doubling, capped ceiling (retries of many deliveries spread out, and none
    comes back sooner than half the planned wait)."""
    ceiling = min(
        settings.HAL0_WEBHOOK_BACKOFF_MAX_S,
        settings.HAL0_WEBHOOK_BACKOFF_BASE_S * 2 ** min(attempts - 1, 30),
    )
    return (rng or random).uniform(ceiling / 2, ceiling)


def _free(now: dt.datetime) -> Q:
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now)


def claim(worker_id: str, now: dt.datetime, limit: int) -> list[int]:
    """Take up to ``limit`` due deliveries for this worker, each by its own conditional
    UPDATE (a row another worker took between our SELECT and UPDATE is skipped)."""
    lease = now + dt.timedelta(seconds=settings.HAL0_WEBHOOK_LEASE_S)
    due = Delivery.objects.filter(
        _free(now), state=Delivery.State.PENDING, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "id")
    claimed = []
    for delivery_id in due.values_list("id", flat=True)[:limit]:
        taken = Delivery.objects.filter(
            _free(now), id=delivery_id, state=Delivery.State.PENDING
        ).update(locked_until=lease, locked_by=worker_id)
        if taken:
            claimed.append(delivery_id)
    return claimed


def send(delivery_id: int, worker_id: str, *, now: dt.datetime | None = None) -> Outcome | None:
    """Send one claimed delivery, log the attempt, and settle or reschedule it."""
    delivery = (
        Delivery.objects.select_related("event", "endpoint")
        .filter(id=delivery_id, locked_by=worker_id)
        .first()
    )
    if delivery is None:
        return None
    event, endpoint = delivery.event, delivery.endpoint
    body = body_of(event, endpoint)
    headers = signed_headers(endpoint.secret, str(event.id), body, now or timezone.now())
    outcome = post(endpoint.url, body, headers)
    return settle(delivery, outcome, worker_id)


def settle(delivery: Delivery, outcome: Outcome, worker_id: str) -> Outcome:
    now = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=delivery,
        at=now,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        ok=outcome.ok,
        error=outcome.error,
        worker=worker_id[:200],
    )
    attempts = delivery.attempts + 1
    mine = Delivery.objects.filter(id=delivery.id, locked_by=worker_id)
    endpoint = WebhookEndpoint.objects.filter(id=delivery.endpoint_id)
    if outcome.ok:
        mine.update(
            state=Delivery.State.DELIVERED,
            attempts=attempts,
            finished_at=now,
            locked_until=None,
            locked_by="",
        )
        endpoint.update(consecutive_failures=0, last_success_at=now)
    else:
        endpoint.update(
            consecutive_failures=F("consecutive_failures") + 1,
            last_failure_at=now,
            last_error=(outcome.error or f"HTTP {outcome.status_code}")[:MAX_ERROR],
        )
        give_up_at = delivery.created_at + dt.timedelta(seconds=settings.HAL0_WEBHOOK_RETRY_FOR_S)
        retry_at = now + dt.timedelta(seconds=backoff(attempts))
        if retry_at > give_up_at:
            mine.update(
                state=Delivery.State.FAILED,
                attempts=attempts,
                finished_at=now,
                locked_until=None,
                locked_by="",
            )
            log.warning("webhook delivery %s gave up after %d attempts", delivery.id, attempts)
        else:
            mine.update(
                attempts=attempts, next_attempt_at=retry_at, locked_until=None, locked_by=""
            )
    return outcome


def deliver_due(worker_id: str) -> int:
    """One turn of the worker: claim what is due and send it; how many were sent."""
    sent = 0
    for delivery_id in claim(worker_id, timezone.now(), settings.HAL0_WEBHOOK_BATCH):
        if send(delivery_id, worker_id) is not None:
            sent += 1
    return sent


def send_test(endpoint: WebhookEndpoint, *, actor: str) -> int:
    """Queue a ``test`` event for this one endpoint (the admin's "send test event")."""
    from django.db import transaction

    from budgets.events.outbox import record_event

    with transaction.atomic():
        event_id = record_event(
            type="test",
            scope_kind="platform",
            message=f"test event from hal0 spend control, sent by {actor}",
            data={"endpoint": endpoint.id},
            deliver_to=[endpoint],
        )
    assert event_id is not None
    return event_id
