"""Foreign keys checked once after the load: rows pointing at nothing are logged and left
out, the rest arrives, and the target ends with every key and index of the schema (also
when the job is interrupted while finishing its tables, then resumed)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from ctxbase import transfer
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.transfer import foreign_keys
from ctxbase.transfer.tables import plan_tables
from ctxbase.transfer.verify import table_checksum
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, settings, table_rows, target_database


def _orphans(source_url: str) -> dict[str, set[str]]:
    """Rows pointing at nothing, written with SQLite's foreign keys off: a memory of a
    project that does not exist, a vector of that memory, and a vector of a memory that
    does not exist. Returns their keys by table."""
    path = source_url.removeprefix("sqlite:///")
    memory, vectors = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA foreign_keys = OFF")
        project = connection.execute("SELECT id FROM projects LIMIT 1").fetchone()[0]
        connection.execute(
            "INSERT INTO memories (id, project_id, content, memory_type, importance, metadata,"
            " access_count, created_at, updated_at) VALUES (?, ?, 'lost', 'fact', 0.5, '{}', 0,"
            " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
            (memory.hex, uuid.uuid4().hex),
        )
        for vector, owner in zip(vectors, (memory, uuid.uuid4()), strict=True):
            connection.execute(
                "INSERT INTO embeddings (id, project_id, memory_id, model, dimensions,"
                " content_hash, vector, created_at) VALUES (?, ?, ?, 'bulk:64', 1, 'h', ?,"
                " '2026-01-01 00:00:00.000000')",
                (vector.hex, project, owner.hex, b"\x00\x00\x80\x3f"),
            )
    return {"memories": {str(memory)}, "embeddings": {str(v) for v in vectors}}


@pytest.mark.parametrize("kind", ["postgres", "sqlite-file"])
def test_rows_pointing_at_nothing_are_logged_and_left_out(
    source_url: str, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bad = _orphans(source_url)
    with target_database(kind, request, tmp_path) as target:
        report = transfer.migrate(source_url, target, batch_size=300, settings=settings())
        assert report.status == "completed_with_errors"
        logged: dict[str, set[str]] = {}
        for entry in report.error_log:
            assert "foreign key" in entry["error"].lower(), entry
            logged.setdefault(entry["table"], set()).add(entry["key"])
        assert logged == bad
        assert report.progress.failed["memories"] == 1
        assert report.progress.failed["embeddings"] == 2
        # every other row arrived, and verification, leaving the three out, agrees
        assert report.verification is not None and report.verification.passed, report
        assert report.verification.tables["embeddings"].skipped_rows == 2
        others = [t for t in transfer.data_tables() if t not in ("memories", "embeddings")]
        assert_same_data(source_url, target, others)
        with Database(source_url) as left, Database(target) as right:
            for name, keys in bad.items():
                expected = [r for r in table_rows(left, name) if str(r["id"]) not in keys]
                assert table_rows(right, name) == expected
            # the target has every foreign key and index of the schema again
            assert migrate.schema_differences(right) == []
            if kind == "postgres":
                with right.connect() as connection:
                    job = connection.execute(select(metadata.tables["migration_jobs"])).one()
                assert job.options["deferred_foreign_keys"] == []
                assert job.options["deferred_indexes"] == []


class Killed(BaseException):
    """Ends the job as SIGKILL would: no handler of the job runs."""


def test_interrupted_while_finishing_then_resumed(
    source_url: str, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    restore = foreign_keys.restore
    calls = {"n": 0}

    def dies_on_the_fourth(connection: object, key: dict[str, object]) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed
        restore(connection, key)  # type: ignore[arg-type]

    with postgres.database() as target:
        monkeypatch.setattr(foreign_keys, "restore", dies_on_the_fourth)
        prepared = transfer.prepare_migration(source_url, target, settings=settings())
        with pytest.raises(Killed):
            prepared.run()
        monkeypatch.setattr(foreign_keys, "restore", restore)
        with Database(target) as db, db.connect() as connection:
            job = connection.execute(select(metadata.tables["migration_jobs"])).one()
        assert job.status == "running"
        assert job.options["deferred_foreign_keys"]  # some keys still set aside

        report = transfer.resume(prepared.job_id, target, settings=settings())
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        assert_same_data(source_url, target)
        with Database(target) as db:
            assert migrate.schema_differences(db) == []


def test_finishing_runs_beside_the_load(source_url: str, postgres: PostgresServer) -> None:
    """The background finisher took each table's checksum once it was final: the job's
    verification is the same as one computed from scratch at the end."""
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=300, settings=settings())
        assert report.status == "completed" and report.verification is not None
        with Database(target) as db:
            migrate.detect_vector_storage(db)
            for plan in plan_tables(None):
                again = table_checksum(db, plan)
                checked = report.verification.tables[plan.name]
                assert (checked.target_rows, checked.target_checksum) == (again.rows, again.hex)
