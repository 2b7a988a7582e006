"""Refuse UPDATE on charges in the database itself, not only in the ORM.

DELETE is refused by the ORM and the admin; it is not blocked here because the test
suite's flush between tests deletes rows on SQLite.
"""

from django.db import migrations

SQLITE_UP = """
CREATE TRIGGER IF NOT EXISTS budgets_charge_no_update
BEFORE UPDATE ON budgets_charge
BEGIN
    SELECT RAISE(ABORT, 'charges are insert-only');
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS budgets_charge_no_update;"

PG_UP = """
CREATE OR REPLACE FUNCTION budgets_charge_no_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'charges are insert-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER budgets_charge_no_update BEFORE UPDATE ON budgets_charge
FOR EACH ROW EXECUTE FUNCTION budgets_charge_no_update();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS budgets_charge_no_update ON budgets_charge;
DROP FUNCTION IF EXISTS budgets_charge_no_update();
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)
    elif vendor == "postgresql":
        schema_editor.execute(PG_UP)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)
    elif vendor == "postgresql":
        schema_editor.execute(PG_DOWN)


class Migration(migrations.Migration):
    dependencies = [("budgets", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
