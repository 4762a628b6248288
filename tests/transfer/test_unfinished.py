"""A migration killed and never resumed leaves its target marked: doctor and /health say
so, naming the job, and a store refuses to open on it, until the job is resumed to its
end or discarded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import ctxbase
from ctxbase.cli import app
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.errors import ConflictError
from ctxbase.server import create_app
from ctxbase.transfer import discard, resume
from ctxbase.transfer.tables import data_tables
from tests.conftest import open_store
from tests.transfer.data import assert_same_data, settings, table_rows, target_database
from tests.transfer.test_resume import kill_midway

runner = CliRunner()


@pytest.fixture(params=["sqlite-file", "postgres"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with target_database(request.param, request, tmp_path) as url:
        yield url


def _doctor(url: str) -> dict[str, object]:
    result = runner.invoke(app, ["-d", url, "doctor", "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    strict = runner.invoke(app, ["-d", url, "doctor", "--strict"])
    assert (strict.exit_code != 0) == (report["status"] != "ok")
    return report


def _unfinished(problems: object) -> list[str]:
    assert isinstance(problems, list)
    return [p["message"] for p in problems if p["code"] == "migration_unfinished"]


def _emptied_live_store(url: str) -> ctxbase.Store:
    """A store serving ``url`` (a server's), its rows then removed so that a migration
    takes the database as its target while the store stays open."""
    live = open_store(url)
    with live.db.connect(write=True) as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    return live


def _health(store: ctxbase.Store) -> tuple[dict[str, object], dict[str, object]]:
    """The server's /health and /ready answers (the latter with its status code)."""
    options = {"auth": "disabled", "embed_worker_interval": 0, "delivery_worker": False}
    app_settings = store.settings.model_copy(update=options)
    with TestClient(create_app(store=store, settings=app_settings)) as http:
        health = http.get("/api/v1/health")
        assert health.status_code == 200  # degraded, yet usable
        ready = http.get("/api/v1/ready")
    return health.json(), {"status_code": ready.status_code, **ready.json()}


def test_marked_until_resumed(source_url: str, target_url: str) -> None:
    live = _emptied_live_store(target_url)
    try:
        job_id = kill_midway(source_url, target_url, 0.5)

        report = _doctor(target_url)
        assert report["status"] == "degraded"
        assert [job_id in m for m in _unfinished(report["problems"])] == [True]
        health, ready = _health(live)
        assert health["status"] == "degraded"
        assert [job_id in m for m in _unfinished(health["problems"])] == [True]
        assert ready["status_code"] == 503 and job_id in str(ready["reason"])
        with pytest.raises(ConflictError, match=job_id) as refused:
            open_store(target_url)
        assert refused.value.hint is not None and "--discard" in refused.value.hint
        # nor is a half-copied database the source of another migration
        with pytest.raises(ConflictError, match=job_id):
            ctxbase.transfer.migrate(target_url, "sqlite://", settings=settings())

        finished = resume(job_id, target_url, settings=settings())
        assert finished.status == "completed", finished.error_log
        assert _unfinished(_doctor(target_url)["problems"]) == []
        health, ready = _health(live)
        assert _unfinished(health["problems"]) == []
        assert ready == {"status_code": 200, "ready": True, "reason": None}
        with open_store(target_url) as store:
            assert store.memories.list().items
        assert_same_data(source_url, target_url)
    finally:
        live.close()


def test_discard_removes_the_copy_and_the_mark(source_url: str, target_url: str) -> None:
    job_id = kill_midway(source_url, target_url, 0.5)
    with pytest.raises(ConflictError):
        open_store(target_url)
    # nor does another job start there, even for tables the first has not reached
    with pytest.raises(ConflictError, match=job_id):
        ctxbase.transfer.migrate(
            source_url, target_url, tables=["dead_letters"], settings=settings()
        )

    result = runner.invoke(app, ["migrate", "--discard", job_id, "--to", target_url])
    assert result.exit_code == 0, result.output
    assert f"Discarded migration job {job_id}" in result.output
    assert _doctor(target_url)["status"] == "ok"
    with Database(target_url) as db:
        assert all(table_rows(db, name) == [] for name in data_tables())
        # indexes and foreign keys set aside for the load are back
        assert migrate.schema_differences(db) == []
    # a discarded job is gone; the database takes a new migration, which completes
    with pytest.raises(ctxbase.NotFoundError):
        discard(job_id, target_url, settings=settings())
    again = ctxbase.transfer.migrate(source_url, target_url, settings=settings())
    assert again.status == "completed"
    with pytest.raises(ConflictError, match="nothing to discard"):
        discard(again.id, target_url, settings=settings())
    with open_store(target_url) as store:
        assert store.memories.list().items
