"""The one schema of ctxbase, portable across SQLite and PostgreSQL.

Conventions: ids are time-ordered UUIDs (v7), timestamps are UTC, JSON is JSONB on
PostgreSQL. Every record belongs to a project and every project to a tenant, so deleting
a tenant or a project deletes everything under it (ON DELETE CASCADE, which SQLite
enforces because ctxbase turns ``foreign_keys`` on for every connection).

Embeddings point at their owner through one of three nullable foreign keys (exactly one is
set), so the database itself deletes an item's vectors with the item: nothing deleted
lingers in an index.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid6 import uuid7

from ctxbase.db.types import EmbeddingVector, JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MESSAGE_ROLES = ("user", "assistant", "system", "tool")
API_KEY_ROLES = ("admin", "writer", "reader")
DELIVERY_METHODS = ("webhook", "redis", "sse", "poll")
DATABASE_KINDS = ("sqlite", "postgresql")
DATABASE_STATUSES = ("configured", "tested", "active", "migrating", "error")
MIGRATION_STATUSES = (
    "pending",
    "running",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
)
SEVERITIES = ("low", "medium", "high", "critical")
CONTRADICTION_STATUSES = ("open", "resolved", "dismissed")
CITATION_STATUSES = ("pending", "verified", "failed", "unverifiable")
JOB_KINDS = ("migration", "reembed")
EMBEDDING_OWNER_COLUMNS = {"message": "message_id", "context": "context_id", "memory": "memory_id"}


def new_id() -> uuid.UUID:
    """A new time-ordered UUID (version 7): sorts by creation, indexes stay compact."""
    return uuid.UUID(int=uuid7().int)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        np.ndarray: EmbeddingVector(),
    }


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(default=utcnow, onupdate=utcnow, nullable=False)


def _json(column: str | None = None, *, default: Any = dict) -> Mapped[Any]:
    """A JSON column that is never NULL. ``column`` renames it (``metadata`` is reserved)."""
    args = (column,) if column else ()
    return mapped_column(*args, default=default, nullable=False)


def _project_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


# --- tenancy ------------------------------------------------------------------------------


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = _id()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(32), default="free")
    quotas: Mapped[dict[str, Any]] = _json()
    settings: Mapped[dict[str, Any]] = _json()
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    id: Mapped[uuid.UUID] = _id()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = _json()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_one_of("role", API_KEY_ROLES), name="role"),)

    key_id: Mapped[uuid.UUID] = _id()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = _json(default=list)
    projects: Mapped[list[Any] | None] = mapped_column(JSONDocument, nullable=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """An administrative action: who did what to which target, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = _id()
    # The tenant the action concerns; None for server-wide ones (database configs, …).
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = _json()
    created_at: Mapped[datetime] = _created()


# --- conversations ------------------------------------------------------------------------


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("health_score BETWEEN 0 AND 100", name="health_score"),
        Index(None, "project_id", "created_at"),
        Index(None, "project_id", "agent_id"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    title: Mapped[str | None] = mapped_column(String(500))
    task: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    provider_config: Mapped[dict[str, Any]] = _json()
    meta: Mapped[dict[str, Any]] = _json("metadata")
    health_score: Mapped[int | None] = mapped_column(Integer)
    # Highest position handed out; appends lock this row, which keeps positions gapless.
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    # Token totals of the messages, kept by the same update that hands out positions.
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "position"),
        CheckConstraint(_one_of("role", MESSAGE_ROLES), name="role"),
        CheckConstraint("position >= 1", name="position"),
        Index(None, "project_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _id()
    # The project is repeated here so search and tenancy checks need no join.
    project_id: Mapped[uuid.UUID] = _project_fk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    thinking: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    finish_reason: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = _json("metadata")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MessageChange(Base):
    """One edit of a message: what it was, what it became, when and by whom. Deleted with
    its message, like a memory's changes."""

    __tablename__ = "message_changes"
    __table_args__ = (Index(None, "message_id", "created_at"),)

    id: Mapped[uuid.UUID] = _id()
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


# --- conversation quality -----------------------------------------------------------------
# Each record is owned by its conversation and deleted with it.


def _conversation_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)


def _owner_fk() -> Mapped[uuid.UUID | None]:
    """An explicit owner: the row is deleted with this conversation."""
    return mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)


class QualityMetric(Base):
    """One point of a conversation's quality time series."""

    __tablename__ = "quality_metrics"
    __table_args__ = (Index(None, "conversation_id", "metric", "measured_at"),)

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    conversation_id: Mapped[uuid.UUID] = _conversation_fk()
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = _json()
    measured_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    created_at: Mapped[datetime] = _created()


class Contradiction(Base):
    """Two messages of a conversation that state conflicting things."""

    __tablename__ = "contradictions"
    __table_args__ = (
        CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
        CheckConstraint(_one_of("status", CONTRADICTION_STATUSES), name="status"),
        Index(None, "conversation_id", "status"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    conversation_id: Mapped[uuid.UUID] = _conversation_fk()
    first_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    second_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), default="medium")
    status: Mapped[str] = mapped_column(String(16), default="open")
    details: Mapped[dict[str, Any]] = _json()
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RepetitionLoop(Base):
    """A pattern a conversation keeps repeating, and where."""

    __tablename__ = "repetition_loops"
    __table_args__ = (
        CheckConstraint("occurrences >= 1", name="occurrences"),
        Index(None, "conversation_id", "first_position"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    conversation_id: Mapped[uuid.UUID] = _conversation_fk()
    pattern: Mapped[str] = mapped_column(Text)
    message_ids: Mapped[list[Any]] = _json(default=list)
    occurrences: Mapped[int] = mapped_column(Integer)
    first_position: Mapped[int] = mapped_column(Integer)
    last_position: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = _json()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Citation(Base):
    """A source a message cites, and whether the citation was verified."""

    __tablename__ = "citations"
    __table_args__ = (
        CheckConstraint(_one_of("status", CITATION_STATUSES), name="status"),
        Index(None, "conversation_id", "status"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    conversation_id: Mapped[uuid.UUID] = _conversation_fk()
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    source_reference: Mapped[str] = mapped_column(Text)
    quoted_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    verified_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --- context and memory -------------------------------------------------------------------


class ContextUnit(Base):
    __tablename__ = "context_units"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "version"),
        CheckConstraint("version >= 1", name="version"),
        Index(None, "project_id", "source_type"),
        Index(None, "project_id", "content_hash"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    source_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(1000))
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = _json("metadata")
    version: Mapped[int] = mapped_column(Integer, default=1)
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("context_units.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Memory(Base):
    __tablename__ = "memories"
    __table_args__ = (
        CheckConstraint("importance BETWEEN 0 AND 1", name="importance"),
        Index(None, "project_id", "agent_id"),
        Index(None, "project_id", "user_id"),
        Index(None, "project_id", "memory_type"),
        Index(None, "expires_at"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    agent_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    # A memory outlives the conversation it came from; only the link is cleared.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    first_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    # Set only when asked: the memory is then deleted with this conversation.
    owner_conversation_id: Mapped[uuid.UUID | None] = _owner_fk()
    content: Mapped[str] = mapped_column(Text)
    memory_type: Mapped[str] = mapped_column(String(32), default="semantic")
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    meta: Mapped[dict[str, Any]] = _json("metadata")
    access_count: Mapped[int] = mapped_column(Integer, default=0)
    last_accessed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MemoryChange(Base):
    """One change to a memory: what it was, what it became, when and by whom.

    Changes are deleted with their memory, so a deleted memory's text lingers nowhere.
    """

    __tablename__ = "memory_changes"
    __table_args__ = (Index(None, "memory_id", "created_at"),)

    id: Mapped[uuid.UUID] = _id()
    memory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("memories.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


# --- agent state --------------------------------------------------------------------------


class StateEntry(Base):
    __tablename__ = "state_entries"
    __table_args__ = (
        UniqueConstraint("project_id", "namespace", "key"),
        CheckConstraint("version >= 1", name="version"),
        Index(None, "expires_at"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    namespace: Mapped[str] = mapped_column(String(500), default="")
    key: Mapped[str] = mapped_column(String(500))
    value: Mapped[Any] = mapped_column(JSONDocument, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime | None]
    # Set only when asked: the entry is then deleted with this conversation.
    owner_conversation_id: Mapped[uuid.UUID | None] = _owner_fk()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --- embeddings ---------------------------------------------------------------------------


class Embedding(Base):
    """One vector of one item under one model; several models may coexist for an item."""

    __tablename__ = "embeddings"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN message_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN context_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN memory_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_owner",
        ),
        CheckConstraint("dimensions > 0", name="dimensions"),
        *(
            Index(
                f"uq_embeddings_{column}_model",
                column,
                "model",
                unique=True,
                sqlite_where=text(f"{column} IS NOT NULL"),
                postgresql_where=text(f"{column} IS NOT NULL"),
            )
            for column in EMBEDDING_OWNER_COLUMNS.values()
        ),
        Index(None, "project_id", "model"),
        Index(None, "model", "content_hash"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE")
    )
    context_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("context_units.id", ondelete="CASCADE")
    )
    memory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("memories.id", ondelete="CASCADE")
    )
    model: Mapped[str] = mapped_column(String(200))
    dimensions: Mapped[int] = mapped_column(Integer)
    # Hash of the embedded text: identical text is embedded once per model.
    content_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[np.ndarray] = mapped_column(EmbeddingVector(), nullable=False)
    created_at: Mapped[datetime] = _created()

    @property
    def owner_kind(self) -> str:
        return next(k for k, c in EMBEDDING_OWNER_COLUMNS.items() if getattr(self, c))

    @property
    def owner_id(self) -> uuid.UUID:
        return next(getattr(self, c) for c in EMBEDDING_OWNER_COLUMNS.values() if getattr(self, c))


# --- events -------------------------------------------------------------------------------


class EventStream(Base):
    """The last sequence handed out in a project's stream; appends lock this row."""

    __tablename__ = "event_streams"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("project_id", "sequence"),
        CheckConstraint("sequence >= 1", name="sequence"),
        Index(None, "project_id", "event_type"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(200))
    data: Mapped[Any] = mapped_column(JSONDocument, nullable=False)
    meta: Mapped[dict[str, Any]] = _json("metadata")
    created_at: Mapped[datetime] = _created()


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(_one_of("delivery", DELIVERY_METHODS), name="delivery"),
        CheckConstraint("cursor >= 0", name="cursor"),
        # One subscription per agent and name: registering again replaces it.
        UniqueConstraint("project_id", "agent_id", "name"),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    agent_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    needs: Mapped[list[Any]] = _json(default=list)
    event_types: Mapped[list[Any]] = _json(default=list)
    threshold: Mapped[float | None] = mapped_column(Float)
    delivery: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(2000))
    # Fernet token; the secret itself is never stored in clear nor returned.
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Delivery of the event after `cursor`: failed attempts so far and when to try again.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The worker delivering for this subscription, until the lease expires: two workers
    # never deliver for one subscription at once, and a dead worker's lease runs out.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class DeadLetter(Base):
    """An event a subscription gave up delivering after its last attempt."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("subscription_id", "sequence"),)

    id: Mapped[uuid.UUID] = _id()
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


# --- administration -----------------------------------------------------------------------


class DatabaseConfig(Base):
    __tablename__ = "database_configs"
    __table_args__ = (
        CheckConstraint(_one_of("kind", DATABASE_KINDS), name="kind"),
        CheckConstraint(_one_of("status", DATABASE_STATUSES), name="status"),
    )

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    database: Mapped[str | None] = mapped_column(String(255))
    schema_name: Mapped[str | None] = mapped_column("schema", String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    # Fernet token; write-only through every interface.
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    sslmode: Mapped[str | None] = mapped_column(String(32))
    pool_size: Mapped[int | None] = mapped_column(Integer)
    max_overflow: Mapped[int | None] = mapped_column(Integer)
    sqlite_path: Mapped[str | None] = mapped_column(String(4096))
    status: Mapped[str] = mapped_column(String(16), default="configured")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    pgvector_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    pgvector_version: Mapped[str | None] = mapped_column(String(32))
    server_version: Mapped[str | None] = mapped_column(String(100))
    last_tested_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MigrationJob(Base):
    __tablename__ = "migration_jobs"
    __table_args__ = (
        CheckConstraint(_one_of("status", MIGRATION_STATUSES), name="status"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        CheckConstraint(_one_of("kind", JOB_KINDS), name="kind"),
        Index(None, "status"),
    )

    id: Mapped[uuid.UUID] = _id()
    kind: Mapped[str] = mapped_column(String(32), default="migration")
    # Descriptions shown to users (masked); the connection details live in `*_encrypted`.
    source: Mapped[dict[str, Any]] = _json()
    target: Mapped[dict[str, Any]] = _json()
    source_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    target_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    tables: Mapped[list[Any]] = _json(default=list)
    options: Mapped[dict[str, Any]] = _json()
    status: Mapped[str] = mapped_column(String(32), default="pending")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    totals: Mapped[dict[str, Any]] = _json()
    migrated: Mapped[dict[str, Any]] = _json()
    failed: Mapped[dict[str, Any]] = _json()
    # Last committed key per table, so a resumed job continues without duplicates.
    checkpoints: Mapped[dict[str, Any]] = _json()
    current_table: Mapped[str | None] = mapped_column(String(100))
    error_log: Mapped[list[Any]] = _json(default=list)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StoreSetting(Base):
    """Settings a database carries itself, shared by every process using it
    (e.g. the active embedding model, which re-embedding switches)."""

    __tablename__ = "store_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDocument, nullable=False)
    updated_at: Mapped[datetime] = _updated()


# --- LangGraph ----------------------------------------------------------------------------
# Checkpoints of LangGraph threads (ctxbase.integrations.langgraph.CtxbaseSaver), and what
# its BaseStore adapter keeps beside the state entries and memories that hold its items.

#: Identifiers LangGraph hands over (threads, namespaces, checkpoint ids): text compared
#: byte by byte on both backends, so checkpoint ids (time-ordered) sort the same way.
LangGraphText = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _langgraph_text(*, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(LangGraphText, nullable=nullable)


class LangGraphCheckpoint(Base):
    """One checkpoint of a thread's namespace: the whole checkpoint, serialized by the
    saver's serializer (its type name and bytes), and its metadata as JSON for filters."""

    __tablename__ = "langgraph_checkpoints"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            name="uq_langgraph_checkpoints_key",
        ),
        # Only checkpoints of tagged runs (LangGraph's server tags every run) are indexed.
        Index(
            None,
            "project_id",
            "run_id",
            sqlite_where=text("run_id IS NOT NULL"),
            postgresql_where=text("run_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    thread_id: Mapped[str] = _langgraph_text()
    checkpoint_ns: Mapped[str] = _langgraph_text()
    checkpoint_id: Mapped[str] = _langgraph_text()
    parent_checkpoint_id: Mapped[str | None] = _langgraph_text(nullable=True)
    # The run that wrote it (from its metadata), for delete_for_runs.
    run_id: Mapped[str | None] = _langgraph_text(nullable=True)
    checkpoint_type: Mapped[str] = mapped_column(String(64))
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any]] = _json("metadata")


class LangGraphWrite(Base):
    """A pending write of a task to a channel, linked to the checkpoint it follows (by
    its ids, without a foreign key: a run may save a step's writes before its checkpoint
    commits)."""

    __tablename__ = "langgraph_writes"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
            name="uq_langgraph_writes_key",
        ),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = _project_fk()
    thread_id: Mapped[str] = _langgraph_text()
    checkpoint_ns: Mapped[str] = _langgraph_text()
    checkpoint_id: Mapped[str] = _langgraph_text()
    task_id: Mapped[str] = _langgraph_text()
    task_path: Mapped[str] = _langgraph_text()
    idx: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(Text)
    value_type: Mapped[str] = mapped_column(String(64))
    value: Mapped[bytes] = mapped_column(LargeBinary)


class LangGraphItemTTL(Base):
    """The time to live of a LangGraph store item (a state entry), so reads can extend
    its expiry by as much again."""

    __tablename__ = "langgraph_item_ttls"

    state_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("state_entries.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[uuid.UUID] = _project_fk()
    ttl_minutes: Mapped[float] = mapped_column(Float)


class LangGraphItemMemory(Base):
    """A memory holding the text of one indexed field of a LangGraph store item (a state
    entry): what natural-language searches of the store find."""

    __tablename__ = "langgraph_item_memories"

    memory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("memories.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[uuid.UUID] = _project_fk()
    state_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("state_entries.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(Text)


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed as such (for Core statements on hot paths)."""
    return cast(Table, model.__table__)


metadata = Base.metadata
