"""The one writer of charge rows.

Every charge, whether from the API, ``ledger import`` or ``bench``, is created here, so
the things that must happen together always do: the insert, the window counters, the
report rollups, and the JSONL mirror append scheduled for after the commit (the mirror
may fall behind the database, never run ahead of it).

The insert is plain SQL (``INSERT ... RETURNING id``, many rows a statement): the ORM's
``bulk_create`` compiles every value of every row and made a million-row ledger take
over two minutes to load (125 µs a row; now 75 µs on SQLite, 100 µs on PostgreSQL, the
JSONL mirror included). Values still pass through each field's ``get_db_prep_save``
unless they are plain ``str``/``int`` for text/integer columns, so they reach the
database as the ORM would send them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, ForeignKey

from budgets.models import Charge
from budgets.reports import rollups
from budgets.services import counters
from personas.models import Persona

# Up to this many rows the counters are bumped in place; a larger insert (an import, a
# bench ledger) drops them instead and lets the next read rebuild each with one SUM.
BUMP_LIMIT = 100
# Rows per INSERT statement (SQLite: fewer if its limit on parameters is lower).
BATCH_SIZE = 5_000
# PostgreSQL: from this many rows a statement, one array per column instead of VALUES.
COLUMNAR_FROM = 20

_FIELDS: list[Field[Any, Any]] = [f for f in Charge._meta.concrete_fields if not f.primary_key]
_ATTNAMES = ["id", *(f.attname for f in _FIELDS)]
# Row keys a caller may give: field names (``hold``) and column names (``hold_id``); the
# persona and the source are the function's arguments.
_ROW_KEYS = ({f.name for f in _FIELDS} | {f.attname for f in _FIELDS}) - {
    "persona",
    "persona_id",
    "source",
}


def insert_charges(
    persona: Persona,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str,
    batch_size: int = BATCH_SIZE,
    unless_request_id_taken: bool = False,
    zones: Sequence[str] = (),
) -> list[Charge]:
    """Insert charges for one persona (fields of ``Charge`` per row); returns them with ids.

    Runs in the caller's transaction when there is one (the charge service holds the
    persona lock around it), else in its own.

    ``unless_request_id_taken`` (one row, not an import): when the persona already has a
    charge with that ``request_id``, insert nothing and return ``[]`` instead of raising
    ``IntegrityError``. The unique constraint decides (``ON CONFLICT ... DO NOTHING``), so
    the caller's transaction stays usable without a savepoint.

    ``zones``: timezones besides the persona's whose day and month counters are kept too
    (its agent's and the platform's, see ``budgets.services.scopes``).
    """
    if not rows:
        return []
    for row in rows:
        unknown = row.keys() - _ROW_KEYS
        if unknown:
            raise TypeError(f"Charge has no field(s) {sorted(unknown)}")
    if unless_request_id_taken and (len(rows) != 1 or source == Charge.Source.IMPORT):
        raise ValueError("unless_request_id_taken is for one non-import row")
    # No savepoint of its own: inside a caller's transaction (the charge service) the
    # rows, counters and mirror hook stand or fall with it. On PostgreSQL a savepoint
    # here was two more round trips a charge.
    with transaction.atomic(savepoint=False):
        created = _insert(
            persona,
            rows,
            source=source,
            batch_size=batch_size,
            skip_taken=unless_request_id_taken,
        )
        if len(created) <= BUMP_LIMIT:
            counters.bump(persona, created, zones=zones)
        else:
            counters.invalidate(persona)
        # The report rollups: one upsert statement for a charge, whatever its size.
        rollups.add(created)
        transaction.on_commit(lambda: _mirror(created))
    return created


@lru_cache(maxsize=8)
def _insert_sql(rows: int, *, columnar: bool, skip_taken: bool = False) -> str:
    """``INSERT ... RETURNING id`` for ``rows`` rows.

    ``columnar`` (PostgreSQL, many rows): one array per column (``unnest``), so the
    statement stays short whatever the row count, where a VALUES list of 13 parameters a
    row costs the driver more to parse than the server takes to insert. Otherwise a plain
    VALUES list, which is cheaper for the single row of a charge.
    Only quoted constant identifiers are formatted in; every value is a parameter.
    """
    qn = connection.ops.quote_name
    head = f"INSERT INTO {qn(Charge._meta.db_table)} ({', '.join(qn(f.column) for f in _FIELDS)})"
    returning = f"RETURNING {qn('id')}"
    if columnar:
        arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in _FIELDS)
        return f"{head} SELECT * FROM unnest({arrays}) {returning}"  # noqa: S608
    one = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
    on_conflict = ""
    if skip_taken:
        # The target names charge_unique_request_id: its columns and its condition.
        persona, request_id, source = (qn(c) for c in ("persona_id", "request_id", "source"))
        import_ = Charge.Source.IMPORT.value
        on_conflict = (
            f"ON CONFLICT ({persona}, {request_id}) WHERE NOT ({source} = '{import_}') DO NOTHING "
        )
    return f"{head} VALUES {', '.join([one] * rows)} {on_conflict}{returning}"


def _array_type(field: Field[Any, Any]) -> str:
    db_type = field.db_type(connection) or "text"
    # varchar(n) would truncate an over-long value silently inside a cast; text keeps it
    # whole so the column refuses it, as it refuses it from the ORM.
    return "text" if db_type.startswith("varchar") else db_type


def _rows_per_statement(batch_size: int) -> int:
    if connection.vendor != "sqlite":
        return batch_size  # PostgreSQL: one parameter per column, whatever the row count
    connection.ensure_connection()
    raw = connection.connection
    # SQLite's limit on parameters depends on how it was built (999 before 3.32).
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if raw is not None else 999
    return max(1, min(batch_size, limit // len(_FIELDS)))


def _insert(
    persona: Persona,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str,
    batch_size: int,
    skip_taken: bool = False,
) -> list[Charge]:
    preps = [_prep(f) for f in _FIELDS]
    values = [_row_values({**row, "source": source}, persona) for row in rows]
    ids: list[int] = []
    step = _rows_per_statement(batch_size)
    with connection.cursor() as cursor:
        for start in range(0, len(values), step):
            chunk = values[start : start + step]
            params: list[Any]
            columnar = connection.vendor == "postgresql" and len(chunk) > COLUMNAR_FROM
            if columnar:
                params = [[prep(v[i]) for v in chunk] for i, prep in enumerate(preps)]
            else:
                params = [prep(x) for v in chunk for prep, x in zip(preps, v, strict=True)]
            cursor.execute(
                _insert_sql(len(chunk), columnar=columnar, skip_taken=skip_taken), params
            )
            ids.extend(int(r[0]) for r in cursor.fetchall())
    if skip_taken and not ids:
        return []  # the request_id was taken: nothing inserted
    created = []
    for pk, row_values, row in zip(ids, values, rows, strict=True):
        # Built as the ORM builds a row read back from the database (positional: fast).
        charge = Charge.from_db(connection.alias, _ATTNAMES, [pk, *row_values])
        # The persona is known: the mirror groups by it without another query.
        charge._state.fields_cache["persona"] = persona
        if row.get("hold") is not None:
            charge._state.fields_cache["hold"] = row["hold"]
        created.append(charge)
    return created


def _row_values(row: Mapping[str, Any], persona: Persona) -> list[Any]:
    """One row's column values in ``_FIELDS`` order, defaults applied as the model would."""
    out: list[Any] = []
    for field in _FIELDS:
        if field.name == "persona":
            out.append(persona.pk)
        elif isinstance(field, ForeignKey):
            related = row.get(field.name)
            out.append(related.pk if related is not None else row.get(field.attname))
        elif field.name in row:
            out.append(row[field.name])
        else:
            out.append(field.get_default())
    return out


def _prep(field: Field[Any, Any]) -> Callable[[Any], Any]:
    """The field's own adaptation, skipped for plain str/int into text/integer columns."""
    plain = isinstance(field, ForeignKey) or field.get_internal_type() in {
        "CharField",
        "BigIntegerField",
        "PositiveIntegerField",
    }

    def prep(value: Any) -> Any:
        if value is None or (plain and type(value) in (str, int)):
            return value
        return field.get_db_prep_save(value, connection)

    return prep


def _mirror(charges: list[Charge]) -> None:
    from budgets.ledger import mirror

    mirror.append(charges)
