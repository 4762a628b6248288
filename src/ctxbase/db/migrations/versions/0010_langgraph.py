"""LangGraph persistence: checkpoints and pending writes of threads, and what the store
adapter keeps beside its items (state entries) and their index (memories).

- ``langgraph_checkpoints``: one row per checkpoint of a thread's namespace, the whole
  checkpoint serialized (type name and bytes) and its metadata as JSON.
- ``langgraph_writes``: pending writes of tasks, by the ids of the checkpoint they follow.
- ``langgraph_item_ttls``: a store item's time to live, for reads that extend it.
- ``langgraph_item_memories``: the memories indexing a store item's fields.

Every table has a project, deleted with it. LangGraph's identifiers are text compared byte
by byte (``COLLATE "C"`` on PostgreSQL, SQLite's default), so checkpoint ids, which are
time-ordered, sort alike on both.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-11
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IDENTIFIER = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _key(
    table: str, column: str, target: str, target_column: str = "id"
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.{target_column}"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _identifier(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, IDENTIFIER, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "langgraph_checkpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        _identifier("thread_id"),
        _identifier("checkpoint_ns"),
        _identifier("checkpoint_id"),
        _identifier("parent_checkpoint_id", nullable=True),
        _identifier("run_id", nullable=True),
        sa.Column("checkpoint_type", sa.String(length=64), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        _key("langgraph_checkpoints", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_langgraph_checkpoints")),
        sa.UniqueConstraint(
            "project_id",
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            name="uq_langgraph_checkpoints_key",
        ),
    )
    op.create_index(
        op.f("ix_langgraph_checkpoints_project_id_run_id"),
        "langgraph_checkpoints",
        ["project_id", "run_id"],
        sqlite_where=sa.text("run_id IS NOT NULL"),
        postgresql_where=sa.text("run_id IS NOT NULL"),
    )
    op.create_table(
        "langgraph_writes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        _identifier("thread_id"),
        _identifier("checkpoint_ns"),
        _identifier("checkpoint_id"),
        _identifier("task_id"),
        _identifier("task_path"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("value_type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        _key("langgraph_writes", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_langgraph_writes")),
        sa.UniqueConstraint(
            "project_id",
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
            name="uq_langgraph_writes_key",
        ),
    )
    op.create_table(
        "langgraph_item_ttls",
        sa.Column("state_entry_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("ttl_minutes", sa.Float(), nullable=False),
        _key("langgraph_item_ttls", "state_entry_id", "state_entries"),
        _key("langgraph_item_ttls", "project_id", "projects"),
        sa.PrimaryKeyConstraint("state_entry_id", name=op.f("pk_langgraph_item_ttls")),
    )
    op.create_table(
        "langgraph_item_memories",
        sa.Column("memory_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("state_entry_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        _key("langgraph_item_memories", "memory_id", "memories"),
        _key("langgraph_item_memories", "project_id", "projects"),
        _key("langgraph_item_memories", "state_entry_id", "state_entries"),
        sa.PrimaryKeyConstraint("memory_id", name=op.f("pk_langgraph_item_memories")),
    )
    op.create_index(
        op.f("ix_langgraph_item_memories_state_entry_id"),
        "langgraph_item_memories",
        ["state_entry_id"],
    )


def downgrade() -> None:
    for name in (
        "langgraph_item_memories",
        "langgraph_item_ttls",
        "langgraph_writes",
        "langgraph_checkpoints",
    ):
        op.drop_table(name)
