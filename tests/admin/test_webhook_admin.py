"""The webhooks admin: add (secret shown once), list, remove, send a test event, the
attempts log, and a failing endpoint on the home page."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.utils import timezone

from budgets.events.endpoints import add_endpoint
from budgets.events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint

BASE = "/admin/budgets/webhookendpoint/"


def test_adding_an_endpoint_shows_its_secret_once(staff_client: Client, agent: Any) -> None:
    response = staff_client.post(
        f"{BASE}add/",
        {
            "url": "https://hooks.example.com/x",
            "format": "standard",
            "event_types": ["budget.warn", "budget.blocked"],
            "agent_id": "hermes",
            "enabled": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert (endpoint.event_types, endpoint.agent_id) == (
        ["budget.warn", "budget.blocked"],
        "hermes",
    )
    assert endpoint.secret in response.content.decode()
    listing = staff_client.get(BASE).content.decode()
    assert "https://hooks.example.com/x" in listing
    assert endpoint.secret not in listing
    assert endpoint.secret not in staff_client.get(f"{BASE}{endpoint.pk}/change/").content.decode()


def test_a_bad_url_is_refused_in_the_form(staff_client: Client) -> None:
    response = staff_client.post(
        f"{BASE}add/",
        {
            "url": "ftp://x.example.com/",
            "format": "standard",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert not WebhookEndpoint.objects.exists()


def test_removing_an_endpoint(staff_client: Client, db: None) -> None:
    endpoint, _ = add_endpoint(url="https://a.example.com/h")
    staff_client.post(f"{BASE}{endpoint.pk}/delete/", {"post": "yes"})
    assert not WebhookEndpoint.objects.exists()


def test_send_test_event_action_queues_a_delivery(staff_client: Client, db: None) -> None:
    endpoint, _ = add_endpoint(url="https://a.example.com/h")
    response = staff_client.post(
        BASE, {"action": "send_test_event", "_selected_action": [endpoint.pk]}, follow=True
    )
    assert "Queued 1 test event" in response.content.decode()
    delivery = Delivery.objects.get()
    assert (delivery.endpoint_id, delivery.event.type) == (endpoint.pk, "test")


def test_the_attempt_log_is_visible_and_a_failing_endpoint_is_on_the_home_page(
    staff_client: Client, db: None
) -> None:
    endpoint, _ = add_endpoint(url="https://down.example.com/h")
    assert "Webhooks failing" not in staff_client.get("/admin/").content.decode()
    event = Event.objects.create(
        type="budget.warn", occurred_at=timezone.now(), scope_kind="platform", message="m"
    )
    delivery = Delivery.objects.create(
        event=event, endpoint=endpoint, created_at=timezone.now(), next_attempt_at=timezone.now()
    )
    for _ in range(3):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            at=timezone.now(),
            status_code=503,
            latency_ms=12,
            error="HTTP 503 Service Unavailable",
        )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=3, last_error="HTTP 503 Service Unavailable"
    )
    page = staff_client.get(f"/admin/budgets/delivery/{delivery.pk}/change/").content.decode()
    assert page.count("HTTP 503 Service Unavailable") == 3
    # On the Spend page, where the admin opens, and on the page of every table.
    for url in ("/admin/", "/admin/tables/"):
        home = staff_client.get(url, follow=True).content.decode()
        assert "Webhooks failing: alerts are not reaching 1 endpoint" in home
        assert "https://down.example.com/h" in home
    assert "failing" in staff_client.get(BASE).content.decode()
