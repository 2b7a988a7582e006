"""Runs: one task of an agent (a goal, a job, a conversation) with a budget of its own.

A run belongs to one persona. Its spend is kept on the row (``spent_nanos``,
``spent_tokens``, ``charge_count``), bumped in the charge's transaction, so a check never
sums charges; ``manage.py counters`` style reconciliation can re-sum them from the
charges that name the run. Checkpoints are the run's history, insert-only.
"""

from __future__ import annotations

from django.db import models

from personas.models import Persona


class Run(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "active"
        NEEDS_BUDGET = "needs_budget", "needs budget"
        CLOSED = "closed", "closed"

    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="runs")
    # The public id: chosen by the client or generated; unique per persona only, so
    # another persona's run reads exactly like an unknown one.
    run_id = models.CharField("run id", max_length=64)
    label = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    hard_cap = models.BooleanField(default=True)
    # NULL = no limit of that kind; 0 is a real limit of zero.
    budget_nanos = models.BigIntegerField(null=True, blank=True)
    budget_tokens = models.BigIntegerField(null=True, blank=True)
    budget_seconds = models.BigIntegerField(null=True, blank=True)
    # Counters: a cache of the run's charges, bumped with each one (never a scan).
    spent_nanos = models.BigIntegerField(default=0)
    spent_tokens = models.BigIntegerField(default=0)
    charge_count = models.PositiveIntegerField(default=0)
    # While needs_budget: the limit that ran out (run_usd | run_tokens | run_seconds).
    exhausted_limit = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    # What the create body said, so the same body again answers 200 and another 409.
    body_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["persona", "run_id"], name="run_unique_per_persona"),
        ]
        indexes = [
            models.Index(fields=["persona", "state", "created_at"], name="run_persona_state"),
            models.Index(fields=["persona", "created_at"], name="run_persona_created"),
        ]

    def __str__(self) -> str:
        return f"{self.persona} run {self.run_id}"


class RunCheckpoint(models.Model):
    """One step of a run's history: created, extended, exhausted, closed. Insert-only."""

    class Kind(models.TextChoices):
        CREATED = "created", "created"
        EXTENDED = "extended", "extended"
        EXHAUSTED = "exhausted", "exhausted"
        CLOSED = "closed", "closed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.CharField(max_length=200, blank=True)
    # The run's budget and spend right after this step (the API's shapes), and what the
    # step itself said: the additions of an extension, the limit that ran out.
    budget = models.JSONField(default=dict)
    spent = models.JSONField(default=dict)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.run} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
