"""Deleted text is erased from SQLite's full-text indexes (see db/fulltext/sqlite_erasure).

SQLite: a table ``pending_fts_purges`` where each searchable table's delete trigger notes
that rows went away, read before every write transaction commits; the indexes of
existing databases are purged once here of what earlier deletes left behind.
PostgreSQL: nothing to do (a GIN index follows the table's visible rows).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from ctxbase.db.fulltext.sqlite_erasure import PENDING_TABLE, SEARCHABLE, erase_from_index

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if not _has_fts5_tables():
        return
    op.execute(f"CREATE TABLE {PENDING_TABLE} (name VARCHAR(100) NOT NULL PRIMARY KEY)")
    for name in SEARCHABLE:
        _delete_trigger(name, noting=True)
        erase_from_index(_cursor(), f"{name}_fts")


def downgrade() -> None:
    if not _has_fts5_tables():
        return
    for name in SEARCHABLE:
        _delete_trigger(name, noting=False)
    op.execute(f"DROP TABLE IF EXISTS {PENDING_TABLE}")


def _delete_trigger(name: str, *, noting: bool) -> None:
    fts = f"{name}_fts"
    note = f"INSERT OR IGNORE INTO {PENDING_TABLE} (name) VALUES ('{name}'); " if noting else ""
    op.execute(f"DROP TRIGGER IF EXISTS {fts}_ad")
    op.execute(
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {name} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, content) VALUES ('delete', old.rowid, old.content); "
        f"{note}END"
    )


def _has_fts5_tables() -> bool:
    """SQLite's FTS5 tables are there (revision 0003); PostgreSQL has GIN indexes instead."""
    return f"{SEARCHABLE[0]}_fts" in sa.inspect(op.get_bind()).get_table_names()


def _cursor() -> Any:
    driver = op.get_bind().connection.dbapi_connection
    assert driver is not None
    return driver.cursor()
