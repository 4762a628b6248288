"""Request and response bodies of the server's own operations (health, jobs, admin).

The records of stored data are in :mod:`ctxbase.records`; these are the envelopes and
reports only the REST API and its clients use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ctxbase.db.diagnostics import PgvectorReport, ProblemReport
from ctxbase.records import Input, Text
from ctxbase.store.databases import DatabaseConfigRecord, TableStatistics
from ctxbase.store.health import EmbedderReport, RedisReport
from ctxbase.transfer.report import MigrationReport

#: Rows per batch of a migration unless asked otherwise.
DEFAULT_MIGRATION_BATCH = 2000  # the copy's own default (transfer.DEFAULT_BATCH_SIZE)


class Deleted(BaseModel):
    deleted: int


class LastSequence(BaseModel):
    last_sequence: int


class DatabaseHealth(BaseModel):
    status: Literal["ok", "degraded", "error"]
    backend: str
    server_version: str | None
    schema_revision: str | None
    head_revision: str
    pending_migrations: list[str]
    vector_storage: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded", "error"] = Field(
        description="The database's status; `degraded` also when the embedder or Redis is down."
    )
    version: str
    database: DatabaseHealth
    pgvector: PgvectorReport | None
    embedder: EmbedderReport
    redis: RedisReport | None = Field(
        description="Only when Redis is configured or a subscription delivers by Redis."
    )
    problems: list[ProblemReport]


class Readiness(BaseModel):
    ready: bool
    reason: str | None = None


class EmbeddingsStatus(BaseModel):
    active_model: str | None
    pending: dict[str, int] = Field(description="Items still without a vector, per kind.")
    reembed: dict[str, Any] | None = Field(description="The last re-embedding job, if any.")


class ReembedRequest(Input):
    model: Text = Field(min_length=1, max_length=300, examples=["openai:text-embedding-3-small"])
    drop_old: bool = False
    batch_size: int = Field(256, ge=1, le=10_000)


class ConfigPage(BaseModel):
    items: list[DatabaseConfigRecord]
    next_cursor: str | None = None


class InitializeIn(Input):
    require_pgvector: bool = Field(False, description="Fail, changing nothing, without pgvector.")


class Statistics(BaseModel):
    tables: list[TableStatistics]


class DatabaseRef(Input):
    """A registered configuration (by id or name) or a URL: exactly one of them."""

    config: Text | None = Field(
        None, max_length=200, description="Id or name of a database configuration."
    )
    url: Text | None = Field(
        None, max_length=4096, description="A database URL (never shown back unmasked)."
    )

    @model_validator(mode="after")
    def _one(self) -> DatabaseRef:
        if (self.config is None) == (self.url is None):
            raise ValueError("give either config or url")
        return self


class MigrationIn(Input):
    source: DatabaseRef
    target: DatabaseRef
    tables: list[Annotated[Text, Field(max_length=100)]] | None = Field(
        None, max_length=100, description="Tables to copy (default: all data)."
    )
    batch_size: int = Field(DEFAULT_MIGRATION_BATCH, ge=1, le=100_000)
    reembed: bool = Field(False, description="Re-embed with the target's model afterwards.")


class MigrationResumeIn(Input):
    """Where a stopped job goes on; the body may be left out."""

    target: DatabaseRef | None = Field(
        None,
        description="The database the job copies into (default: the registered configuration "
        "it was started into).",
    )
    source: DatabaseRef | None = Field(
        None, description="The database it copies from (default: the job's own source)."
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"target": {"config": "production"}}]}
    )


class MigrationPage(BaseModel):
    items: list[MigrationReport]
    next_cursor: str | None = None
