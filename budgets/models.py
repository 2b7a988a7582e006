"""Ledger of record (charges), holds, per-window spend counters and API keys.

Charges are insert-only: the model, its queryset and the admin refuse updates and deletes,
and a database trigger refuses UPDATE as well. Corrections are new rows.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from budgets.runs.models import Run, RunCheckpoint
from personas.ids import validate_id
from personas.models import Agent, Persona

__all__ = ["ApiKey", "Charge", "Hold", "LedgerIsAppendOnly", "Run", "RunCheckpoint", "SpendCounter"]


class LedgerIsAppendOnly(Exception):
    """Raised on any attempt to change or remove a recorded charge."""


class ChargeQuerySet(models.QuerySet["Charge"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("charges are insert-only; record a correcting charge instead")

    def delete(self) -> NoReturn:
        raise LedgerIsAppendOnly("charges are insert-only; record a correcting charge instead")


class Charge(models.Model):
    class CostSource(models.TextChoices):
        REPORTED = "reported", "reported by the client"
        CATALOGUE = "catalogue", "priced from the catalogue"
        OVERRIDE = "override", "priced from prices.toml"
        UNPRICED = "unpriced", "not recorded (no price known)"

    class Source(models.TextChoices):
        API = "api", "API"
        IMPORT = "import", "imported hal0 ledger"
        BENCH = "bench", "benchmark"

    id = models.BigAutoField(primary_key=True)  # also the mirror line's ``seq``
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="charges")
    ts = models.DateTimeField()
    surface = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    # NULL = the cost is not known (an imported line without one, or tokens of a model
    # nobody prices: cost_source "unpriced"); never shown as $0.00.
    cost_nanos = models.BigIntegerField(null=True, blank=True)
    # Where the cost came from; the price list it was computed from, when it was (a
    # catalogue or prices.toml edit never re-prices a recorded charge).
    cost_source = models.CharField(
        max_length=16, choices=CostSource.choices, default=CostSource.REPORTED
    )
    price_version = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Parts of input_tokens read from / written to the provider's prompt cache.
    cache_read_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveIntegerField(null=True, blank=True)
    hold = models.OneToOneField(
        "Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="charge"
    )
    # The run the charge counts against (budgets.runs), if it named one.
    run = models.ForeignKey(
        Run, on_delete=models.PROTECT, null=True, blank=True, related_name="charges"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    actor = models.CharField(max_length=200, blank=True)
    # Idempotency: a replay with the same body returns ``response``; another body is 409.
    body_sha256 = models.CharField(max_length=64, blank=True)
    response = models.JSONField(null=True, blank=True)
    # Imported lines are keyed by a hash of the line, so an import can run again safely.
    import_key = models.CharField(max_length=64, blank=True, default="")

    objects = ChargeQuerySet.as_manager()

    class Meta:
        # The admin's breadcrumbs and titles say "Ledger", as its top bar does.
        verbose_name_plural = "ledger"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["persona", "ts"], name="charge_persona_ts"),
            # The ledger page's request_id search (exact or a prefix) across personas.
            models.Index(fields=["request_id"], name="charge_request_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["persona", "request_id"],
                condition=~models.Q(source="import"),
                name="charge_unique_request_id",
            ),
            models.UniqueConstraint(
                fields=["persona", "import_key"],
                condition=~models.Q(import_key=""),
                name="charge_unique_import_key",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.persona} {self.request_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerIsAppendOnly("charges are insert-only; record a correcting charge instead")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("charges are insert-only; record a correcting charge instead")


class Hold(models.Model):
    """An estimate reserved against every window until settled, released or expired."""

    class State(models.TextChoices):
        ACTIVE = "active", "active"
        SETTLED = "settled", "settled"
        RELEASED = "released", "released"

    id = models.CharField(primary_key=True, max_length=40)
    # No index of its own: hold_persona_active leads with the persona. With both, a plan
    # made before the table had statistics could take this one for a persona's active
    # holds and read every hold the persona ever had (docs/architecture.md, "Plans made
    # before the statistics").
    persona = models.ForeignKey(
        Persona, on_delete=models.PROTECT, related_name="holds", db_index=False
    )
    amount_nanos = models.BigIntegerField()
    # The check's token estimate (input + max output tokens; 1 when it sent neither),
    # reserved against every token cap of the persona, its agent and the platform.
    amount_tokens = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # An expired hold keeps state "active" (no background job); it stops counting because
    # every reader filters on expires_at.
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    resolved_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    # A hold taken for a run reserves against the run's budget too.
    run = models.ForeignKey(
        Run,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="holds",
        db_index=False,  # hold_run_active leads with it
    )
    # Idempotent reserve: a check with ``reserve`` and a ``request_id`` takes at most one
    # hold per (persona, request_id). A repeat with the same body (``body_sha256``) answers
    # ``response``, the first answer as JSON text; another body is 409 ``hold.conflict``.
    # Empty for holds taken without a request_id.
    request_id = models.CharField(max_length=200, blank=True, default="")
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    response = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["persona", "state", "expires_at"], name="hold_persona_active"),
            # The admin's holds list, newest first: with a hold per reserved call the table
            # grows like the ledger, and without it every page sorted all of it.
            models.Index(fields=["created_at"], name="hold_created_at"),
            # The platform's held sum: every persona's active holds (an agent's go through
            # hold_persona_active, one persona at a time).
            models.Index(fields=["state", "expires_at"], name="hold_active"),
            # A run's active holds, read by every check naming the run: without the state
            # in the index, each such check read every hold the run ever took.
            models.Index(fields=["run", "state", "expires_at"], name="hold_run_active"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["persona", "request_id"],
                condition=~models.Q(request_id=""),
                name="hold_unique_request_id",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class SpendCounter(models.Model):
    """Cached sum of charges for one window of one persona: the hot path reads these.

    ``tz`` is the IANA zone the window's boundaries were computed in, so changing a
    persona's timezone starts fresh counters instead of reusing wrongly cut ones.
    Lifetime counters use ``tz=""`` and ``start=1970-01-01``.
    """

    class Window(models.TextChoices):
        DAY = "day", "day"
        MONTH = "month", "month"
        LIFETIME = "lifetime", "lifetime"

    # No index of its own: counter_unique_window leads with the persona (as for holds).
    persona = models.ForeignKey(
        Persona, on_delete=models.CASCADE, related_name="counters", db_index=False
    )
    window = models.CharField(max_length=16, choices=Window.choices)
    tz = models.CharField(max_length=64, blank=True)
    start = models.DateField()
    spent_nanos = models.BigIntegerField(default=0)
    # Input + output tokens of the window's charges (a charge without counts adds none).
    tokens = models.BigIntegerField(default=0)
    # Charges whose cost is unknown (cost_nanos NULL): shown as "not recorded", never $0.
    unpriced = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["persona", "window", "tz", "start"], name="counter_unique_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.persona} {self.window} {self.start} {self.tz}"


class SpendRollup(models.Model):
    """Charges summed per persona, UTC hour, model and surface: what spend reports read.

    Kept by the one charge writer in the charge's own transaction (one upsert statement),
    so a report never scans the ledger. UTC hours build the days, weeks and months of any
    timezone whose midnights fall on a whole hour (beside ``SpendDailyRollup``); the hours a
    half-hour zone cuts in two are read from the charges (docs/reports.md). A cache like
    ``SpendCounter``:
    ``manage.py counters reconcile`` re-sums it from the charges.
    """

    hour = models.DateTimeField()  # the UTC hour's start
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="rollups")
    model = models.CharField(max_length=200)
    surface = models.CharField(max_length=200)
    cost_nanos = models.BigIntegerField(default=0)  # charges with a recorded cost only
    charges = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    unpriced = models.BigIntegerField(default=0)  # charges whose cost was not recorded

    class Meta:
        constraints = [
            # Hour first: a report reads a range of hours across personas.
            models.UniqueConstraint(
                fields=["hour", "persona", "model", "surface"], name="rollup_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.persona} {self.hour:%Y-%m-%d %H}:00 {self.surface} {self.model}"


class SpendDailyRollup(models.Model):
    """Charges summed per persona, UTC day, model and surface: the hourly rollups' days.

    Kept beside ``SpendRollup`` by the same writer in the same transaction (one more
    upsert statement). A report reads a UTC day from here instead of its 24 hourly rows,
    and corrects it with the hourly rows of the hours another zone's midnight moves to
    the next or the previous local day (budgets/reports/spend_report.py). A cache, checked
    and fixed by ``manage.py counters reconcile``.
    """

    day = models.DateField()  # the UTC date
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="daily_rollups")
    model = models.CharField(max_length=200)
    surface = models.CharField(max_length=200)
    cost_nanos = models.BigIntegerField(default=0)  # charges with a recorded cost only
    charges = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    unpriced = models.BigIntegerField(default=0)  # charges whose cost was not recorded

    class Meta:
        constraints = [
            # Day first: a report reads a range of days across personas.
            models.UniqueConstraint(
                fields=["day", "persona", "model", "surface"], name="daily_rollup_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.persona} {self.day:%Y-%m-%d} {self.surface} {self.model}"


class ApiKey(AbstractAPIKey):
    """A hashed API key: operator keys may do everything, agent keys one agent's calls."""

    class Scope(models.TextChoices):
        OPERATOR = "operator", "operator"
        AGENT = "agent", "agent"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    # An agent key may be narrowed to one persona of its agent (its id, as in the URL):
    # every other persona then reads as not found. "" = every persona of the agent.
    persona_slug = models.CharField(
        "persona", max_length=64, blank=True, default="", validators=[validate_id]
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = BaseAPIKeyManager()  # type: ignore[assignment,misc]

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="operator", agent__isnull=True)
                    | models.Q(scope="agent", agent__isnull=False)
                ),
                name="apikey_scope_matches_agent",
            ),
            models.CheckConstraint(
                condition=models.Q(persona_slug="") | models.Q(scope="agent"),
                name="apikey_persona_needs_agent_scope",
            ),
        ]


class RefusedTally(models.Model):
    """Refused checks per persona, local day (the persona's timezone) and the limit that
    refused them: a best-effort tally, counted in memory and written in batches
    (``budgets.reports.refused``), never a ledger and never reconciled."""

    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    scope = models.CharField(max_length=16)  # persona | agent | platform | run
    limit = models.CharField(max_length=32)  # daily, per_call, paused, daily_tokens, ...
    count = models.BigIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["persona", "day", "scope", "limit"], name="refusedtally_unique_key"
            ),
        ]
        # The Spend page reads a range of days across personas.
        indexes = [models.Index(fields=["day"], name="refusedtally_day")]

    def __str__(self) -> str:
        return f"{self.persona} {self.day} {self.scope} {self.limit}: {self.count}"


# The events package keeps its rows beside its code; importing them here registers them.
from budgets.events.models import (  # noqa: E402
    Delivery,
    DeliveryAttempt,
    Event,
    WebhookEndpoint,
    WorkerHeartbeat,
)

__all__ = [
    "ApiKey",
    "Charge",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "Hold",
    "LedgerIsAppendOnly",
    "SpendCounter",
    "WebhookEndpoint",
    "WorkerHeartbeat",
]
