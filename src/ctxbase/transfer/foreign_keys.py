"""Foreign keys of a PostgreSQL target, checked once after the load instead of row by row.

With its foreign keys in place, every row ``COPY`` writes fires a trigger that looks up
(and locks) the row it points at: on the benchmark's data that was more work for the
server than the copy itself. A job therefore drops the foreign keys of the tables it
loads (recording their definitions in the same transaction) and adds them back once a
table is loaded. Adding a foreign key checks every row in one pass (a join), so no row
goes unchecked; it only happens later.

A row pointing at nothing makes that pass fail. The job then looks for such rows, logs
each one as failed (as it would have been when written), deletes it, and adds the key
again, all in one transaction. Tables are handled parents first, and a table's keys are
added back only after its parents': a row deleted from a parent then never cascades into
a child without being logged, since the child's key, absent, cascades nothing, and the
child's rows pointing at it are found as orphans in turn.

Self-references (a context unit's ``superseded_by``) stay: the link pass fills them in
after the table's rows are all there, and keeps checking them row by row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

_FOREIGN_KEYS = text(
    "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), r.relname,"
    " ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)"
    "  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),"
    " ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i)"
    "  JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)"
    " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
    " JOIN pg_class r ON r.oid = k.confrelid"
    " WHERE k.contype = 'f' AND c.relname = ANY(:tables) AND k.conrelid <> k.confrelid"
    " AND c.relnamespace = current_schema()::regnamespace ORDER BY c.relname, k.conname"
)

_EXISTS = text(
    "SELECT 1 FROM pg_constraint WHERE conname = :name AND conrelid = to_regclass(:table)"
)


def set_aside(connection: Connection, tables: list[str]) -> list[dict[str, Any]]:
    """Drop the foreign keys of ``tables`` (self-references excepted); returns them."""
    keys = [
        {
            "table": table,
            "name": name,
            "definition": definition,
            "columns": list(columns),
            "references": references,
            "referenced_columns": list(referenced),
        }
        for table, name, definition, references, columns, referenced in connection.execute(
            _FOREIGN_KEYS, {"tables": tables}
        )
    ]
    quote = connection.dialect.identifier_preparer.quote
    for key in keys:
        connection.execute(
            text(f"ALTER TABLE {quote(key['table'])} DROP CONSTRAINT {quote(key['name'])}")
        )
    return keys


def restore(connection: Connection, key: dict[str, Any]) -> None:
    """Add ``key`` back, checking every row (nothing if it is there: a resumed job).
    Raises the driver's IntegrityError when a row points at nothing."""
    if connection.execute(_EXISTS, {"name": key["name"], "table": key["table"]}).first():
        return
    quote = connection.dialect.identifier_preparer.quote
    connection.execute(
        text(
            f"ALTER TABLE {quote(key['table'])} ADD CONSTRAINT {quote(key['name'])}"
            f" {key['definition']}"
        )
    )


def orphans(connection: Connection, key: dict[str, Any], primary_key: str) -> list[Any]:
    """Primary keys of the rows of ``key``'s table pointing at no row of its parent
    (rows with a NULL in the key's columns point at nothing and are fine)."""
    quote = connection.dialect.identifier_preparer.quote
    pairs = list(zip(key["columns"], key["referenced_columns"], strict=True))
    present = " AND ".join(f"c.{quote(column)} IS NOT NULL" for column, _ in pairs)
    matches = " AND ".join(f"p.{quote(ref)} = c.{quote(column)}" for column, ref in pairs)
    statement = text(
        f"SELECT c.{quote(primary_key)} FROM {quote(key['table'])} AS c WHERE {present}"
        f" AND NOT EXISTS (SELECT 1 FROM {quote(key['references'])} AS p WHERE {matches})"
        f" ORDER BY c.{quote(primary_key)}"
    )
    return [row[0] for row in connection.execute(statement)]


def describe_orphan(key: dict[str, Any]) -> str:
    """The error logged for a row deleted because it points at nothing, in the words
    PostgreSQL uses when such a row is written with the key in place."""
    return (
        f'ForeignKeyViolation: insert or update on table "{key["table"]}" violates foreign'
        f' key constraint "{key["name"]}" ({", ".join(key["columns"])} not present in'
        f' table "{key["references"]}")'
    )
