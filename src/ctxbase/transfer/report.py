"""What a migration job reports: status, progress, errors and verification."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal[
    "pending", "running", "completed", "completed_with_errors", "failed", "cancelled"
]
FINISHED = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})


class Progress(BaseModel):
    percent: float = Field(0.0, description="Rows copied (or given up) of all rows, 0 to 100.")
    rows: dict[str, int] = Field(default_factory=dict, description="Rows copied per table.")
    totals: dict[str, int] = Field(default_factory=dict, description="Rows per source table.")
    failed: dict[str, int] = Field(default_factory=dict, description="Rows in the error log.")
    current_table: str | None = None
    rows_per_second: float | None = Field(None, description="Rate of this run so far.")
    eta_seconds: float | None = Field(None, description="Time left at the current rate.")


class TableVerification(BaseModel):
    source_rows: int
    skipped_rows: int = Field(description="Source rows in the error log, not copied.")
    target_rows: int
    source_checksum: str = Field(description="Checksum of the source rows that were copied.")
    target_checksum: str
    equal: bool


class Verification(BaseModel):
    passed: bool
    tables: dict[str, TableVerification]


JobKind = Literal["migration", "reembed"]


class MigrationReport(BaseModel):
    """A job as every interface shows it (never with a connection string): a migration,
    or a re-embedding (``kind``), whose source and target name the models."""

    id: uuid.UUID
    kind: JobKind = "migration"
    status: JobStatus
    source: dict[str, Any] = Field(description="The source: backend, host, database.")
    target: dict[str, Any] = Field(description="The target: backend, host, database.")
    tables: list[str]
    options: dict[str, Any]
    progress: Progress
    error_log: list[dict[str, Any]] = Field(default_factory=list)
    verification: Verification | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
