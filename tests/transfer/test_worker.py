"""The embeddings loaded by a worker process beside the job's own: forked or started
afresh, its progress passed on, and a worker that dies, a cancel, or no worker at all."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ctxbase import transfer
from ctxbase.transfer import migration as migration_module
from ctxbase.transfer import worker as worker_module
from ctxbase.transfer.copying import TableCopy
from ctxbase.transfer.report import MigrationReport
from tests.conftest import PostgresServer
from tests.transfer.data import assert_same_data, cancel_after, settings

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is for Linux")


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[worker_module.Worker]:
    """Every worker the jobs of a test start."""
    workers: list[worker_module.Worker] = []
    start = worker_module.start_worker

    def recording(migration: Any, tables: list[str]) -> worker_module.Worker:
        workers.append(start(migration, tables))
        return workers[-1]

    monkeypatch.setattr(migration_module, "start_worker", recording)
    return workers


@contextmanager
def forked_worker_pages(
    monkeypatch: pytest.MonkeyPatch, before_page: Callable[[str], None]
) -> Iterator[None]:
    """Within the block, jobs fork their worker, which inherits this patch: every page of a
    step is written after ``before_page(step)`` runs."""
    monkeypatch.setattr(worker_module, "_can_fork", lambda: True)
    write_page = TableCopy._write_page

    def patched(self: Any, step: str, *args: Any) -> None:
        before_page(step)
        write_page(self, step, *args)

    monkeypatch.setattr(TableCopy, "_write_page", patched)
    try:
        yield
    finally:
        monkeypatch.setattr(TableCopy, "_write_page", write_page)


def slow_embeddings(step: str) -> None:
    """A worker slow enough for reports and a cancel to fall within its load."""
    if step == "embeddings":
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["forked", "spawned"])
def test_the_worker_loads_the_embeddings(
    how: str,
    source_url: str,
    postgres: PostgresServer,
    started: list[worker_module.Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "_can_fork", lambda: how == "forked")
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=100, settings=settings())
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        assert_same_data(source_url, target)
    kind = worker_module.ForkedWorker if how == "forked" else worker_module.SpawnedWorker
    assert [type(w) for w in started] == [kind]
    assert started[0].tables == ["embeddings"] and started[0].result() == {"status": "loaded"}
    progress = report.progress
    assert progress.rows == progress.totals and progress.percent == 100.0
    assert progress.failed == dict.fromkeys(progress.totals, 0)


def test_the_workers_progress_is_reported(
    source_url: str, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's reports count the worker's rows while it loads them."""
    reports: list[MigrationReport] = []
    with forked_worker_pages(monkeypatch, slow_embeddings), postgres.database() as target:
        report = transfer.migrate(
            source_url, target, batch_size=100, on_progress=reports.append, settings=settings()
        )
    total = report.progress.totals["embeddings"]
    during = [r.progress.rows.get("embeddings", 0) for r in reports if r.status == "running"]
    assert any(0 < rows < total for rows in during)
    assert during == sorted(during)  # never counted back
    assert report.progress.rows["embeddings"] == total


def test_without_a_worker(
    source_url: str,
    postgres: PostgresServer,
    started: list[worker_module.Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(migration_module, "WORKER_TABLES", ())
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=200, settings=settings())
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        assert_same_data(source_url, target)
    assert started == []


def test_no_worker_for_an_sqlite_target(
    source_url: str, tmp_path: Any, started: list[worker_module.Worker]
) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    report = transfer.migrate(source_url, target, batch_size=200, settings=settings())
    assert report.status == "completed" and started == []


def test_a_worker_that_dies_fails_the_job_which_resumes(
    source_url: str, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker process dies mid-table (as if killed): the job fails, its other tables
    loaded; resumed, it completes with nothing duplicated or missing."""
    parent = os.getpid()
    pages = {"n": 0}

    def dying(step: str) -> None:
        if os.getpid() != parent and step == "embeddings":
            pages["n"] += 1
            if pages["n"] == 4:
                os._exit(9)

    with postgres.database() as target:
        with forked_worker_pages(monkeypatch, dying):
            first = transfer.migrate(source_url, target, batch_size=100, settings=settings())
        assert first.status == "failed"
        assert "the worker process died" in first.error_log[-1]["error"]
        assert first.progress.rows["embeddings"] == 300  # three batches committed
        assert first.progress.rows["memories"] == first.progress.totals["memories"]
        second = transfer.resume(first.id, target, settings=settings())
        # (the failure stays in the job's log)
        assert second.status == "completed_with_errors", second.error_log
        assert [entry["error"] for entry in second.error_log] == [
            "database_error: Loading embeddings: the worker process died: exit status 9"
        ]
        assert second.verification is not None and second.verification.passed
        assert second.progress.rows == second.progress.totals
        assert_same_data(source_url, target)


def test_cancel_while_the_worker_loads(
    source_url: str, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel, cancel_midway = cancel_after("embeddings", 300)
    with postgres.database() as target:
        with forked_worker_pages(monkeypatch, slow_embeddings):
            first = transfer.migrate(
                source_url,
                target,
                batch_size=100,
                on_progress=cancel_midway,
                cancel=cancel,
                settings=settings(),
            )
        assert first.status == "cancelled"
        assert 300 <= first.progress.rows["embeddings"] < first.progress.totals["embeddings"]
        second = transfer.resume(first.id, target, settings=settings())
        assert second.status == "completed", second.error_log
        assert second.verification is not None and second.verification.passed
        assert_same_data(source_url, target)


def test_postgres_to_postgres(
    source_url: str, postgres: PostgresServer, started: list[worker_module.Worker]
) -> None:
    """From PostgreSQL, the worker reads pgvector's binary form and decodes it."""
    with postgres.database() as middle, postgres.database() as end:
        there = transfer.migrate(source_url, middle, batch_size=300, settings=settings())
        assert there.status == "completed", there.error_log
        again = transfer.migrate(middle, end, batch_size=300, settings=settings())
        assert again.status == "completed", again.error_log
        assert again.verification is not None and again.verification.passed
        assert_same_data(source_url, end)
    assert [w.result() for w in started] == [{"status": "loaded"}] * 2
