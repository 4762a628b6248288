"""Moving in: conversation quality records, message edits, conversation-owned state and
memories, named subscriptions, and job kinds.

- ``quality_metrics``, ``contradictions``, ``repetition_loops``, ``citations``: owned by
  a conversation and deleted with it.
- ``messages.updated_at`` (existing rows: their ``created_at``) and ``message_changes``,
  the history of edits.
- ``memories.owner_conversation_id`` and ``state_entries.owner_conversation_id``: set only
  when asked, they make the row go with its conversation.
- ``subscriptions.name``: one subscription per project, agent and name. Where an agent
  already had several, the newest keeps the empty name and the others are named by id.
- ``migration_jobs.kind``: ``migration`` or ``reembed``.

On SQLite, messages, memories and state entries gain their columns with ``ADD COLUMN``:
rebuilding those tables would move the rows their full-text indexes point at.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ctxbase.db.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OWNED = ("memories", "state_entries")


def _stamp(name: str) -> sa.Column:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=False)


def _key(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _conversation_record(
    name: str, *columns: sa.Column | sa.ForeignKeyConstraint, checks: dict[str, str]
) -> None:
    """A table owned by a conversation: id, project, conversation, then its own columns."""
    op.create_table(
        name,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        *columns,
        _key(name, "project_id", "projects", "CASCADE"),
        _key(name, "conversation_id", "conversations", "CASCADE"),
        *(
            sa.CheckConstraint(sql, name=op.f(f"ck_{name}_{label}"))
            for label, sql in checks.items()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    _quality_tables()
    _message_edits()
    for name in OWNED:
        _add_owner(name)
    _named_subscriptions()
    with op.batch_alter_table("migration_jobs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="migration")
        )
        batch.create_check_constraint("kind", _one_of("kind", ("migration", "reembed")))


def _quality_tables() -> None:
    _conversation_record(
        "quality_metrics",
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        _stamp("measured_at"),
        _stamp("created_at"),
        checks={},
    )
    op.create_index(
        op.f("ix_quality_metrics_conversation_id_metric_measured_at"),
        "quality_metrics",
        ["conversation_id", "metric", "measured_at"],
    )
    _conversation_record(
        "contradictions",
        sa.Column("first_message_id", sa.Uuid(), nullable=False),
        sa.Column("second_message_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        _key("contradictions", "first_message_id", "messages", "CASCADE"),
        _key("contradictions", "second_message_id", "messages", "CASCADE"),
        checks={
            "severity": _one_of("severity", ("low", "medium", "high", "critical")),
            "status": _one_of("status", ("open", "resolved", "dismissed")),
        },
    )
    op.create_index(
        op.f("ix_contradictions_conversation_id_status"),
        "contradictions",
        ["conversation_id", "status"],
    )
    for column in ("first_message_id", "second_message_id"):
        op.create_index(op.f(f"ix_contradictions_{column}"), "contradictions", [column])
    _conversation_record(
        "repetition_loops",
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column("message_ids", JSON, nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_position", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.Integer(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
        checks={"occurrences": "occurrences >= 1"},
    )
    op.create_index(
        op.f("ix_repetition_loops_conversation_id_first_position"),
        "repetition_loops",
        ["conversation_id", "first_position"],
    )
    _conversation_record(
        "citations",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("source_reference", sa.Text(), nullable=False),
        sa.Column("quoted_text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("verified_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        _key("citations", "message_id", "messages", "CASCADE"),
        checks={"status": _one_of("status", ("pending", "verified", "failed", "unverifiable"))},
    )
    op.create_index(
        op.f("ix_citations_conversation_id_status"), "citations", ["conversation_id", "status"]
    )
    op.create_index(op.f("ix_citations_message_id"), "citations", ["message_id"])


def _message_edits() -> None:
    # A constant default lets SQLite add a NOT NULL column in place; every row then
    # takes its own creation time.
    op.add_column(
        "messages",
        sa.Column(
            "updated_at",
            UTCDateTime(timezone=True),
            nullable=False,
            server_default="1970-01-01 00:00:00.000000",
        ),
    )
    op.execute("UPDATE messages SET updated_at = created_at")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("messages", "updated_at", server_default=None)
    op.create_table(
        "message_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        _stamp("created_at"),
        _key("message_changes", "message_id", "messages", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_changes")),
    )
    op.create_index(
        op.f("ix_message_changes_message_id_created_at"),
        "message_changes",
        ["message_id", "created_at"],
    )


def _add_owner(table: str) -> None:
    column = "owner_conversation_id"
    name = op.f(f"fk_{table}_{column}_conversations")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite accepts a reference in ADD COLUMN when the column starts NULL.
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} CHAR(32) CONSTRAINT {name} "
            "REFERENCES conversations (id) ON DELETE CASCADE"
        )
    else:
        op.add_column(table, sa.Column(column, sa.Uuid(), nullable=True))
        op.create_foreign_key(name, table, "conversations", [column], ["id"], ondelete="CASCADE")
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def _named_subscriptions() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("name", sa.String(length=200), nullable=False, server_default="")
        )
    # Older duplicates of one agent's subscription keep working under their own id.
    op.execute(
        "UPDATE subscriptions SET name = CAST(id AS VARCHAR(200)) WHERE EXISTS ("
        "SELECT 1 FROM subscriptions AS newer WHERE newer.project_id = subscriptions.project_id"
        " AND newer.agent_id = subscriptions.agent_id AND newer.id > subscriptions.id)"
    )
    with op.batch_alter_table("subscriptions") as batch:
        batch.alter_column("name", server_default=None)
        batch.drop_index("ix_subscriptions_project_id_agent_id")
        batch.create_unique_constraint(
            "uq_subscriptions_project_id_agent_id_name", ["project_id", "agent_id", "name"]
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_constraint("uq_subscriptions_project_id_agent_id_name", type_="unique")
        batch.create_index("ix_subscriptions_project_id_agent_id", ["project_id", "agent_id"])
        batch.drop_column("name")
    with op.batch_alter_table("migration_jobs") as batch:
        batch.drop_constraint(op.f("ck_migration_jobs_kind"), type_="check")
        batch.drop_column("kind")
    for table in OWNED:
        op.drop_index(op.f(f"ix_{table}_owner_conversation_id"), table_name=table)
        if op.get_bind().dialect.name != "sqlite":
            op.drop_constraint(
                op.f(f"fk_{table}_owner_conversation_id_conversations"), table, type_="foreignkey"
            )
        op.drop_column(table, "owner_conversation_id")
    op.drop_table("message_changes")
    op.drop_column("messages", "updated_at")
    for name in ("citations", "repetition_loops", "contradictions", "quality_metrics"):
        op.drop_table(name)
