"""Rows of the events package. Registered with the ``budgets`` app (budgets/models.py
imports this module), so their migrations live in budgets/migrations."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per running ``manage.py worker``; ``/readyz`` reads the newest beat."""

    worker_id = models.CharField(primary_key=True, max_length=200)
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "budgets"
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.worker_id


class Event(models.Model):
    """One row of the outbox: written in the transaction of the change that caused it.

    ``budget.warn``, ``budget.exceeded`` and ``budget.blocked`` carry a ``window_start``
    and are unique per (type, scope, window, window start): a second insert of the same
    key does nothing (``ON CONFLICT DO NOTHING``), whichever process tries it.
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    scope_kind = models.CharField(max_length=16)  # persona | agent | platform | run
    agent_id = models.CharField(max_length=64, blank=True)
    persona_id = models.CharField(max_length=64, blank=True)
    window = models.CharField(max_length=16, blank=True)  # daily | monthly | lifetime | ...
    window_start = models.DateField(null=True, blank=True)
    cap_nanos = models.BigIntegerField(null=True, blank=True)
    spent_nanos = models.BigIntegerField(null=True, blank=True)
    resets_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "budgets"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["type", "scope_kind", "agent_id", "persona_id", "window", "window_start"],
                condition=models.Q(window_start__isnull=False),
                name="event_once_per_window",
            ),
        ]
        indexes = [models.Index(fields=["agent_id", "id"], name="event_agent_id")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type}"


class WebhookEndpoint(models.Model):
    """Where events are sent: added in the admin or with ``manage.py webhook add``."""

    class Format(models.TextChoices):
        STANDARD = "standard", "Standard Webhooks (JSON event)"
        SLACK = "slack", "Slack incoming webhook"

    url = models.URLField(max_length=2000)
    # The signing key ("whsec_" + base64), kept to sign; shown to the operator once.
    secret = models.CharField(max_length=100)
    # Event types sent (empty = every type); optional agent filter ("" = every agent).
    event_types = models.JSONField(default=list, blank=True)
    agent_id = models.CharField(max_length=64, blank=True)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.STANDARD)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Health, kept by the worker: consecutive failed attempts and the latest outcomes.
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        app_label = "budgets"
        ordering = ["id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str, agent_id: str) -> bool:
        if self.event_types and event_type not in self.event_types and event_type != "test":
            return False
        # Platform-wide events (no agent) reach every endpoint, filtered or not.
        return not self.agent_id or not agent_id or self.agent_id == agent_id


class Delivery(models.Model):
    """One event for one endpoint, until it is delivered or given up on.

    A worker claims it by a conditional UPDATE that sets ``locked_until`` (a lease): a
    worker that dies mid-send leaves a lease that simply runs out, and another worker
    takes the delivery again (at least once; the ``webhook-id`` lets the receiver
    drop a duplicate).
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "budgets"
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"event #{self.event_id} -> {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """Every attempt, success or not: when, the HTTP status, how long, what went wrong."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        app_label = "budgets"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
