"""Token totals on conversations, filled in from the messages already stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for column in ("input_tokens", "output_tokens"):
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE conversations SET"
        " input_tokens = COALESCE((SELECT SUM(m.input_tokens) FROM messages m"
        " WHERE m.conversation_id = conversations.id), 0),"
        " output_tokens = COALESCE((SELECT SUM(m.output_tokens) FROM messages m"
        " WHERE m.conversation_id = conversations.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("output_tokens")
        batch.drop_column("input_tokens")
