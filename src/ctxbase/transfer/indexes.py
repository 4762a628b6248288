"""Secondary indexes set aside while a PostgreSQL target is loaded, and built afterwards.

Keeping an index up to date row by row costs far more than building it once over the
loaded table (the full-text GIN index most of all), which is why bulk loaders build
indexes last. Only indexes that enforce nothing are set aside: primary keys and unique
indexes stay, so the load still refuses duplicates. The job records the definitions of
what it dropped in the same transaction, so a resumed job still builds them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

_SECONDARY = text(
    "SELECT c.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
    " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid"
    " WHERE c.relname = ANY(:tables) AND c.relnamespace = current_schema()::regnamespace"
    " AND NOT x.indisunique AND NOT x.indisprimary ORDER BY c.relname, i.relname"
)


def set_aside(connection: Connection, tables: list[str]) -> list[dict[str, Any]]:
    """Drop the secondary indexes of ``tables``; returns their definitions."""
    indexes = [
        {"table": table, "name": name, "definition": definition}
        for table, name, definition in connection.execute(_SECONDARY, {"tables": tables})
    ]
    preparer = connection.dialect.identifier_preparer
    for index in indexes:
        connection.execute(text(f"DROP INDEX {preparer.quote(index['name'])}"))
    return indexes


def build(connection: Connection, index: dict[str, Any]) -> None:
    """Build one index set aside (nothing if it exists: a resumed job may have built it)."""
    definition = index["definition"]
    for head in ("CREATE INDEX ", "CREATE UNIQUE INDEX "):
        if definition.startswith(head):
            definition = head + "IF NOT EXISTS " + definition[len(head) :]
            break
    connection.execute(text(definition))
