"""Count deleted embeddings on SQLite, so in-memory vector indexes know to reload.

SQLite vector search keeps each model's vectors in memory; new rows are found by rowid,
and this counter (bumped by a trigger, cascaded deletes included) says when rows went
away. PostgreSQL searches with pgvector's own indexes and needs no counter.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # pgvector indexes follow deletions themselves
    op.execute(
        "CREATE TRIGGER embeddings_deleted AFTER DELETE ON embeddings BEGIN "
        "INSERT INTO store_settings (key, value, updated_at) "
        "VALUES ('embedding.deletions', 1, CURRENT_TIMESTAMP) "
        "ON CONFLICT (key) DO UPDATE SET value = value + 1; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS embeddings_deleted")
