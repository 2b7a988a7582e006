"""The holds' and the counters' indexes, as a check's statements need them.

- Holds and counters lose their own index on ``persona_id``: each table has a wider one
  that starts with the persona (``hold_persona_active``, ``counter_unique_window``) and
  answers every lookup the narrow one did. With both, a prepared statement planned
  before PostgreSQL had statistics for the holds took the narrow one for a persona's
  active holds, and then read every hold the persona ever had on each check
  (docs/architecture.md, "Plans made before the statistics").
- A run's active holds get ``hold_run_active (run, state, expires_at)`` in place of the
  index on ``run_id`` alone, through which a check naming a run read every hold the run
  ever took.

A narrow index is found by its columns and dropped where it is, rather than by
``AlterField``, which on SQLite copies the whole table to drop one index.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

# (table, column): the single-column indexes dropped.
NARROW = (
    ("budgets_hold", "persona_id"),
    ("budgets_spendcounter", "persona_id"),
    ("budgets_hold", "run_id"),
)


def _narrow_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in found.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
    ]


def drop(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in NARROW:
        for name in _narrow_indexes(schema_editor, table, column):
            schema_editor.execute(f"DROP INDEX {quote(name)}")


def restore(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in NARROW:
        if not _narrow_indexes(schema_editor, table, column):
            name = f"{table}_{column}"
            schema_editor.execute(f"CREATE INDEX {quote(name)} ON {quote(table)} ({quote(column)})")


class Migration(migrations.Migration):
    dependencies = [
        ("budgets", "0014_spend_daily_rollup"),
        ("personas", "0004_alter_budgetchange_options"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(fields=["run", "state", "expires_at"], name="hold_run_active"),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, restore)],
            state_operations=[
                migrations.AlterField(
                    model_name="hold",
                    name="persona",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="holds",
                        to="personas.persona",
                    ),
                ),
                migrations.AlterField(
                    model_name="spendcounter",
                    name="persona",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="counters",
                        to="personas.persona",
                    ),
                ),
                migrations.AlterField(
                    model_name="hold",
                    name="run",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="holds",
                        to="budgets.run",
                    ),
                ),
            ],
        ),
    ]
