"""Drop the holds' and the counters' own index on ``persona_id``.

Each table has a wider index that starts with the persona (``hold_persona_active``,
``counter_unique_window``), which answers every lookup the narrow one did. With both, a
prepared statement planned before PostgreSQL had statistics for the holds took the narrow
one for a persona's active holds, and then read every hold the persona ever had on each
check (docs/architecture.md, "Plans made before the statistics").

The index is found by its columns and dropped where it is, rather than by ``AlterField``,
which on SQLite copies the whole table to drop one index.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("budgets_hold", "budgets_spendcounter")


def _narrow_indexes(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in found.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == ["persona_id"]
    ]


def drop(apps, schema_editor):
    quote = schema_editor.quote_name
    for table in TABLES:
        for name in _narrow_indexes(schema_editor, table):
            schema_editor.execute(f"DROP INDEX {quote(name)}")


def restore(apps, schema_editor):
    quote = schema_editor.quote_name
    for table in TABLES:
        if not _narrow_indexes(schema_editor, table):
            name = f"{table}_persona_id"
            schema_editor.execute(
                f"CREATE INDEX {quote(name)} ON {quote(table)} ({quote('persona_id')})"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("budgets", "0014_spend_daily_rollup"),
        ("personas", "0004_alter_budgetchange_options"),
    ]

    operations = [
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
            ],
        ),
    ]
