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
