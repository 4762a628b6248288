"""Initial schema: tenancy, conversations, context, memory, state, embeddings, events,
subscriptions, database configurations and migration jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ctxbase.db.types import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = UTCDateTime(timezone=True)

log = logging.getLogger("ctxbase.migrations")


def _vector_column_type() -> sa.types.TypeEngine:
    """pgvector's ``vector`` where the extension can be enabled, float32 bytes elsewhere."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from pgvector.sqlalchemy import VECTOR

        from ctxbase.db.vectors.postgres import ensure_pgvector

        if ensure_pgvector(bind).installed:
            return VECTOR()
    return sa.LargeBinary()


def upgrade() -> None:
    op.create_table(
        "database_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("database", sa.String(length=255), nullable=True),
        sa.Column("schema", sa.String(length=255), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("sslmode", sa.String(length=32), nullable=True),
        sa.Column("pool_size", sa.Integer(), nullable=True),
        sa.Column("max_overflow", sa.Integer(), nullable=True),
        sa.Column("sqlite_path", sa.String(length=4096), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("pgvector_enabled", sa.Boolean(), nullable=False),
        sa.Column("pgvector_version", sa.String(length=32), nullable=True),
        sa.Column("server_version", sa.String(length=100), nullable=True),
        sa.Column("last_tested_at", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "kind IN ('sqlite', 'postgresql')", name=op.f("ck_database_configs_kind")
        ),
        sa.CheckConstraint(
            "status IN ('configured', 'tested', 'active', 'migrating', 'error')",
            name=op.f("ck_database_configs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_database_configs")),
        sa.UniqueConstraint("name", name=op.f("uq_database_configs_name")),
    )
    op.create_table(
        "migration_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", JSON, nullable=False),
        sa.Column("target", JSON, nullable=False),
        sa.Column("source_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("target_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("tables", JSON, nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("totals", JSON, nullable=False),
        sa.Column("migrated", JSON, nullable=False),
        sa.Column("failed", JSON, nullable=False),
        sa.Column("checkpoints", JSON, nullable=False),
        sa.Column("current_table", sa.String(length=100), nullable=True),
        sa.Column("error_log", JSON, nullable=False),
        sa.Column("verification", JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'completed_with_errors', 'failed', 'cancelled')",
            name=op.f("ck_migration_jobs_status"),
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_migration_jobs_progress")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_jobs")),
    )
    op.create_index(op.f("ix_migration_jobs_status"), "migration_jobs", ["status"], unique=False)

    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("quotas", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("projects", JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("role IN ('admin', 'writer', 'reader')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"], unique=False)
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_projects_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_projects_tenant_id_slug")),
    )
    op.create_index(op.f("ix_projects_tenant_id"), "projects", ["tenant_id"], unique=False)

    op.create_table(
        "context_units",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("superseded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_context_units_version")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_context_units_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by"],
            ["context_units.id"],
            name=op.f("fk_context_units_superseded_by_context_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_context_units")),
        sa.UniqueConstraint(
            "project_id", "name", "version", name=op.f("uq_context_units_project_id_name_version")
        ),
    )
    op.create_index(
        op.f("ix_context_units_project_id_content_hash"),
        "context_units",
        ["project_id", "content_hash"],
        unique=False,
    )
    op.create_index(
        op.f("ix_context_units_project_id_source_type"),
        "context_units",
        ["project_id", "source_type"],
        unique=False,
    )
    op.create_index(
        op.f("ix_context_units_superseded_by"), "context_units", ["superseded_by"], unique=False
    )

    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("task", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("provider_config", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("health_score", sa.Integer(), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "health_score BETWEEN 0 AND 100", name=op.f("ck_conversations_health_score")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_conversations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        op.f("ix_conversations_project_id_agent_id"),
        "conversations",
        ["project_id", "agent_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_project_id_created_at"),
        "conversations",
        ["project_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "event_streams",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_event_streams_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_event_streams")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("sequence >= 1", name=op.f("ck_events_sequence")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("project_id", "sequence", name=op.f("uq_events_project_id_sequence")),
    )
    op.create_index(
        op.f("ix_events_project_id_event_type"),
        "events",
        ["project_id", "event_type"],
        unique=False,
    )
    op.create_index(op.f("ix_events_tenant_id"), "events", ["tenant_id"], unique=False)

    op.create_table(
        "state_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("namespace", sa.String(length=500), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_state_entries_version")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_state_entries_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_entries")),
        sa.UniqueConstraint(
            "project_id", "namespace", "key", name=op.f("uq_state_entries_project_id_namespace_key")
        ),
    )
    op.create_index(
        op.f("ix_state_entries_expires_at"), "state_entries", ["expires_at"], unique=False
    )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("needs", JSON, nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "delivery IN ('webhook', 'redis', 'sse', 'poll')",
            name=op.f("ck_subscriptions_delivery"),
        ),
        sa.CheckConstraint("cursor >= 0", name=op.f("ck_subscriptions_cursor")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_subscriptions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        op.f("ix_subscriptions_project_id_agent_id"),
        "subscriptions",
        ["project_id", "agent_id"],
        unique=False,
    )

    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("thinking", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("finish_reason", sa.String(length=64), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "role IN ('user', 'assistant', 'system', 'tool')", name=op.f("ck_messages_role")
        ),
        sa.CheckConstraint("position >= 1", name=op.f("ck_messages_position")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_messages_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "conversation_id", "position", name=op.f("uq_messages_conversation_id_position")
        ),
    )
    op.create_index(
        op.f("ix_messages_project_id_created_at"),
        "messages",
        ["project_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "memories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("first_message_id", sa.Uuid(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("memory_type", sa.String(length=32), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("access_count", sa.Integer(), nullable=False),
        sa.Column("last_accessed_at", UTC_DATETIME, nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("importance BETWEEN 0 AND 1", name=op.f("ck_memories_importance")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_memories_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["first_message_id"],
            ["messages.id"],
            name=op.f("fk_memories_first_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_memories_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
    )
    op.create_index(
        op.f("ix_memories_conversation_id"), "memories", ["conversation_id"], unique=False
    )
    op.create_index(op.f("ix_memories_expires_at"), "memories", ["expires_at"], unique=False)
    op.create_index(
        op.f("ix_memories_first_message_id"), "memories", ["first_message_id"], unique=False
    )
    op.create_index(
        op.f("ix_memories_project_id_agent_id"),
        "memories",
        ["project_id", "agent_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_memories_project_id_memory_type"),
        "memories",
        ["project_id", "memory_type"],
        unique=False,
    )
    op.create_index(
        op.f("ix_memories_project_id_user_id"), "memories", ["project_id", "user_id"], unique=False
    )

    op.create_table(
        "embeddings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("context_id", sa.Uuid(), nullable=True),
        sa.Column("memory_id", sa.Uuid(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", _vector_column_type(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "(CASE WHEN message_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN context_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN memory_id IS NULL THEN 0 ELSE 1 END) = 1",
            name=op.f("ck_embeddings_one_owner"),
        ),
        sa.CheckConstraint("dimensions > 0", name=op.f("ck_embeddings_dimensions")),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["context_units.id"],
            name=op.f("fk_embeddings_context_id_context_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memories.id"],
            name=op.f("fk_embeddings_memory_id_memories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_embeddings_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_embeddings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
    )
    op.create_index(
        op.f("ix_embeddings_model_content_hash"),
        "embeddings",
        ["model", "content_hash"],
        unique=False,
    )
    op.create_index(
        op.f("ix_embeddings_project_id_model"), "embeddings", ["project_id", "model"], unique=False
    )
    op.create_index(
        "uq_embeddings_context_id_model",
        "embeddings",
        ["context_id", "model"],
        unique=True,
        sqlite_where=sa.text("context_id IS NOT NULL"),
        postgresql_where=sa.text("context_id IS NOT NULL"),
    )
    op.create_index(
        "uq_embeddings_memory_id_model",
        "embeddings",
        ["memory_id", "model"],
        unique=True,
        sqlite_where=sa.text("memory_id IS NOT NULL"),
        postgresql_where=sa.text("memory_id IS NOT NULL"),
    )
    op.create_index(
        "uq_embeddings_message_id_model",
        "embeddings",
        ["message_id", "model"],
        unique=True,
        sqlite_where=sa.text("message_id IS NOT NULL"),
        postgresql_where=sa.text("message_id IS NOT NULL"),
    )

    op.create_table(
        "memory_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("memory_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memories.id"],
            name=op.f("fk_memory_changes_memory_id_memories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_changes")),
    )
    op.create_index(
        op.f("ix_memory_changes_memory_id_created_at"),
        "memory_changes",
        ["memory_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("memory_changes")
    op.drop_table("embeddings")
    op.drop_table("memories")
    op.drop_table("messages")
    op.drop_table("subscriptions")
    op.drop_table("state_entries")
    op.drop_table("events")
    op.drop_table("event_streams")
    op.drop_table("conversations")
    op.drop_table("context_units")
    op.drop_table("projects")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("migration_jobs")
    op.drop_table("database_configs")
