"""Full-text search: FTS5 tables on SQLite, tsvector GIN indexes on PostgreSQL.

SQLite: one external-content FTS5 table per searchable kind (``<table>_fts``), kept in
step with its table by triggers (which also fire for cascaded deletes), Porter stemming.
PostgreSQL: a GIN index on ``to_tsvector('english', content)`` per kind; queries use the
same expression, so no column is added. Both index text that exists before the upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE = ("messages", "context_units", "memories")


def upgrade() -> None:
    for name in SEARCHABLE:
        if op.get_bind().dialect.name == "sqlite":
            _sqlite_fts(name)
        else:
            op.execute(
                f"CREATE INDEX ix_{name}_fts ON {name} "
                "USING gin (to_tsvector('english'::regconfig, content))"
            )


def downgrade() -> None:
    for name in SEARCHABLE:
        if op.get_bind().dialect.name == "sqlite":
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {name}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {name}_fts")
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{name}_fts")


def _sqlite_fts(name: str) -> None:
    fts = f"{name}_fts"
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5(content, content='{name}', "
        "content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {name} BEGIN "
        f"INSERT INTO {fts}(rowid, content) VALUES (new.rowid, new.content); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {name} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, content) VALUES ('delete', old.rowid, old.content); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF content ON {name} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, content) VALUES ('delete', old.rowid, old.content); "
        f"INSERT INTO {fts}(rowid, content) VALUES (new.rowid, new.content); END"
    )
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # index existing rows
