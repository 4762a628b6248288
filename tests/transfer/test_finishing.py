"""How a job finishes its tables: on a PostgreSQL target a table's foreign keys are added
back only once its indexes are built; a table the source holds no rows of is done at once
(and on PostgreSQL keeps its indexes and keys through the job: nothing to load, nothing
to build again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import ctxbase
from ctxbase import transfer
from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.transfer import foreign_keys, indexes
from tests.postgres import PostgresServer
from tests.transfer.conftest import add_memories
from tests.transfer.data import assert_same_data, settings, target_database


def test_keys_of_a_table_come_after_its_indexes(
    source_url: str, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[tuple[str, str]] = []
    build, restore = indexes.build, foreign_keys.restore

    def building(connection: Any, index: dict[str, Any]) -> None:
        steps.append(("index", index["table"]))
        build(connection, index)

    def restoring(connection: Any, key: dict[str, Any]) -> None:
        steps.append(("key", key["table"]))
        restore(connection, key)

    monkeypatch.setattr(indexes, "build", building)
    monkeypatch.setattr(foreign_keys, "restore", restoring)
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=300, settings=settings())
        assert report.status == "completed", report.error_log
        with Database(target) as db:
            assert migrate.schema_differences(db) == []
    assert ("key", "embeddings") in steps and ("index", "memories") in steps
    for table in {table for _, table in steps}:
        last_index = max((i for i, s in enumerate(steps) if s == ("index", table)), default=-1)
        first_key = min((i for i, s in enumerate(steps) if s == ("key", table)), default=-1)
        assert first_key == -1 or first_key > last_index, (table, steps)


@pytest.mark.parametrize("kind", ["postgres", "sqlite-file"])
def test_empty_tables_are_done_at_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL they also keep their indexes and keys through the job."""
    source = f"sqlite:///{tmp_path / 'few.db'}"
    with ctxbase.open(source, embedder=None) as store:
        add_memories(store, 50)  # memories and embeddings; no messages, contexts, events…
    built: list[str] = []
    build = indexes.build
    monkeypatch.setattr(
        indexes,
        "build",
        lambda connection, index: built.append(index["table"]) or build(connection, index),
    )
    with target_database(kind, request, tmp_path) as target:
        prepared = transfer.prepare_migration(source, target, settings=settings())
        try:
            with Database(target) as db, db.connect() as connection:
                job = connection.execute(select(metadata.tables["migration_jobs"])).one()
        except BaseException:
            prepared.close()
            raise
        with_rows = {name for name, total in job.totals.items() if total}
        assert {"memories", "embeddings", "projects"} <= with_rows
        assert "messages" not in with_rows and "events" not in with_rows
        if kind == "postgres":
            aside = {item["table"] for item in job.options["deferred_indexes"]}
            aside |= {item["table"] for item in job.options["deferred_foreign_keys"]}
            assert {"memories", "embeddings"} <= aside <= with_rows
        report = prepared.run()
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        assert report.progress.rows["messages"] == 0 and report.progress.rows["memories"] == 50
        if kind == "postgres":
            assert {"memories", "embeddings"} <= set(built) <= with_rows
        assert_same_data(source, target)
        with Database(target) as db:
            assert migrate.schema_differences(db) == []
