"""Job records through the library and the client alike: migrations and re-embedding."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import ctxbase
from ctxbase.db.schema import new_id, utcnow
from ctxbase.errors import InvalidInputError, NotFoundError
from ctxbase.store.jobs import HOME_COPY, record_job
from ctxbase.transfer.report import MigrationReport, Progress


def _record(store: ctxbase.Store, kind: str, status: str) -> MigrationReport:
    report = MigrationReport(
        id=new_id(),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        source={"backend": "sqlite", "database": "a.db"},
        target={"backend": "postgresql", "host": "db", "port": 5432, "database": "b"},
        tables=["memories"],
        options={"batch_size": 100},
        progress=Progress(percent=40.0, rows={"memories": 4}, totals={"memories": 10}),
        created_at=utcnow(),
    )
    record_job(store.db, report, {HOME_COPY: True} if kind == "migration" else {})
    return report


def test_jobs_list_and_get(api: Any, store: ctxbase.Store) -> None:
    migration = _record(store, "migration", "running")
    reembed = _record(store, "reembed", "completed")
    assert [j.id for j in api.jobs.list().items] == [reembed.id, migration.id]
    assert [j.id for j in api.jobs.list(kind="migration").items] == [migration.id]
    assert [j.id for j in api.jobs.list(status="completed").items] == [reembed.id]
    page = api.jobs.list(limit=1)
    assert len(page.items) == 1 and page.next_cursor
    assert [j.id for j in api.jobs.list(limit=1, cursor=page.next_cursor).items] == [migration.id]
    got = api.jobs.get(migration.id)
    assert (got.kind, got.status, got.progress.percent, got.progress.rows) == (
        "migration",
        "running",
        40.0,
        {"memories": 4},
    )
    assert got.options["batch_size"] == 100 and got.target["host"] == "db"
    with pytest.raises(NotFoundError):
        api.jobs.get(uuid.uuid4())
    with pytest.raises(InvalidInputError):
        api.jobs.list(status="paused")
