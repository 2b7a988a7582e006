"""Agents and their personas.

The persona's TOML file is the source of truth for its budget; the row caches what was
last parsed from it (caps in nano-USD) plus the file's signature, so a request only needs
an ``os.stat`` to know whether the file changed by hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models

from personas.ids import validate_id


class BudgetColumns(models.Model):
    """The last good budget block of a file (persona, agent or platform) and what it was
    parsed from. The file is the truth; these columns are its cache."""

    # Money in nano-USD, tokens as counts; NULL = no cap on that window, 0 = a cap of zero.
    daily_cap_nanos = models.BigIntegerField(null=True, blank=True)
    monthly_cap_nanos = models.BigIntegerField(null=True, blank=True)
    lifetime_cap_nanos = models.BigIntegerField(null=True, blank=True)
    per_call_cap_nanos = models.BigIntegerField(null=True, blank=True)
    daily_cap_tokens = models.BigIntegerField(null=True, blank=True)
    monthly_cap_tokens = models.BigIntegerField(null=True, blank=True)
    lifetime_cap_tokens = models.BigIntegerField(null=True, blank=True)
    per_call_cap_tokens = models.BigIntegerField(null=True, blank=True)
    hard_cap = models.BooleanField(default=True)
    # NULL / "" = not set in the file (the defaults apply: 0.8 and UTC).
    warn_at = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    # The stop switch (``paused = true``): every check under this scope is refused.
    paused = models.BooleanField(default=False)
    # Unknown keys of the budget block, kept so the row can rebuild the whole block.
    budget_extra = models.JSONField(default=dict, blank=True)

    # What the caps above were parsed from. An empty signature = never loaded.
    file_signature = models.CharField(max_length=128, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    # Set while the file on disk is malformed: the caps above stay the last good ones.
    load_error = models.TextField(blank=True)
    has_good_budget = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def effective_warn_at(self) -> Decimal:
        return self.warn_at if self.warn_at is not None else Decimal("0.8")

    @property
    def effective_timezone(self) -> str:
        return self.timezone or "UTC"


class Agent(BudgetColumns):
    """An agent; its ``agent.toml`` (optional) holds the agent-wide ``[agent.budget]``."""

    id = models.CharField(primary_key=True, max_length=64, validators=[validate_id])
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class Platform(BudgetColumns):
    """The one platform row: ``platform.toml``'s ``[platform.budget]``, over every agent."""

    ID = 1
    id = models.PositiveSmallIntegerField(primary_key=True, default=ID)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "platform"

    def __str__(self) -> str:
        return "platform"


class Persona(BudgetColumns):
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="personas")
    slug = models.CharField("persona id", max_length=64, validators=[validate_id])
    display_name = models.CharField(max_length=200, blank=True)
    summary = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "slug"], name="persona_unique_per_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.slug}"


class BudgetChange(models.Model):
    """Audit trail: every change of caps (a persona's, an agent's or the platform's),
    whoever made it and however. ``scope`` says whose: a persona change names the persona
    (and its agent), an agent change the agent, a platform change neither."""

    class Scope(models.TextChoices):
        PERSONA = "persona", "persona"
        AGENT = "agent", "agent"
        PLATFORM = "platform", "platform"

    class Via(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "admin"
        FILE = "file", "hand edit of the file"
        CLI = "cli", "command line"

    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.PERSONA)
    persona = models.ForeignKey(
        Persona, on_delete=models.PROTECT, null=True, blank=True, related_name="budget_changes"
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="budget_changes"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="user or API key that made the change")
    via = models.CharField(max_length=16, choices=Via.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField()

    class Meta:
        # Named as the admin's top bar names them ("Cap changes"), breadcrumbs included.
        verbose_name = "cap change"
        verbose_name_plural = "cap changes"
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="persona", persona__isnull=False)
                    | models.Q(scope="agent", persona__isnull=True, agent__isnull=False)
                    | models.Q(scope="platform", persona__isnull=True, agent__isnull=True)
                ),
                name="budgetchange_scope_matches_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def owner(self) -> str:
        """Whose caps changed: ``hermes/coder``, ``agent hermes`` or ``platform``."""
        if self.scope == self.Scope.PERSONA:
            return str(self.persona)
        if self.scope == self.Scope.AGENT:
            return f"agent {self.agent_id}"
        return "platform"

    def describe(self) -> dict[str, Any]:
        return {"actor": self.actor, "via": self.via, "before": self.before, "after": self.after}
