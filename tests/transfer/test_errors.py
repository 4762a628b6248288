"""Bad rows and bad input: the row goes to the error log, every other row arrives."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from ctxbase import transfer
from ctxbase.db.database import Database
from ctxbase.db.schema import metadata
from ctxbase.errors import ConflictError, InvalidInputError
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, settings, table_rows


def _malform(source_url: str) -> dict[str, str]:
    """Two memories broken the way real files get broken: JSON that does not parse, and a
    NUL character, which SQLite keeps and PostgreSQL text refuses."""
    path = source_url.removeprefix("sqlite:///")
    bad = {"json": uuid.uuid4(), "nul": uuid.uuid4()}
    with sqlite3.connect(path) as connection:
        project = connection.execute("SELECT id FROM projects LIMIT 1").fetchone()[0]
        for kind, content, meta in (("json", "ok", "{broken"), ("nul", "nul\x00byte", "{}")):
            connection.execute(
                "INSERT INTO memories (id, project_id, content, memory_type, importance,"
                " metadata, access_count, created_at, updated_at) VALUES (?, ?, ?, 'fact', 0.5,"
                " ?, 0, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
                (bad[kind].hex, project, content, meta),
            )
    return {kind: str(key) for kind, key in bad.items()}


def test_malformed_rows_are_logged_and_the_rest_arrives(
    source_url: str, postgres: PostgresServer
) -> None:
    bad = _malform(source_url)
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=200, settings=settings())
        assert report.status == "completed_with_errors"
        logged = {entry["key"]: entry for entry in report.error_log}
        assert set(logged) == set(bad.values())
        assert all(entry["table"] == "memories" for entry in logged.values())
        assert report.progress.failed["memories"] == 2
        # every other row arrived, and verification, leaving the two out, agrees
        assert report.verification is not None and report.verification.passed
        others = [name for name in transfer.data_tables() if name != "memories"]
        assert_same_data(source_url, target, others)
        with Database(source_url) as left, Database(target) as right:
            expected = [r for r in _memories(left) if str(r["id"]) not in logged]
            assert _memories(right) == expected


def test_a_value_not_of_its_column_type(source_url: str, postgres: PostgresServer) -> None:
    """SQLite keeps what it is given, text in an integer column too. The page holding it
    cannot be encoded as a whole: it is written row by row, and only that row fails."""
    path = source_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        (key,) = connection.execute("SELECT id FROM state_entries LIMIT 1").fetchone()
        connection.execute("UPDATE state_entries SET version = 'many' WHERE id = ?", (key,))
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=200, settings=settings())
        assert report.status == "completed_with_errors"
        assert [entry["key"] for entry in report.error_log] == [str(uuid.UUID(key))]
        assert "integer" in report.error_log[0]["error"]
        assert report.verification is not None and report.verification.passed
        others = [name for name in transfer.data_tables() if name != "state_entries"]
        assert_same_data(source_url, target, others)


def test_timestamps_written_with_an_offset(source_url: str, postgres: PostgresServer) -> None:
    """Another tool may write an SQLite timestamp with an offset: it arrives as that
    instant, as the store reads it, and both checksums agree."""
    path = source_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        (key,) = connection.execute("SELECT id FROM memories LIMIT 1").fetchone()
        connection.execute(
            "UPDATE memories SET updated_at = '2026-01-01 12:00:00.250000+02:00' WHERE id = ?",
            (key,),
        )
    with postgres.database() as target:
        report = transfer.migrate(source_url, target, batch_size=200, settings=settings())
        assert report.status == "completed", report.error_log
        assert report.verification is not None and report.verification.passed
        assert_same_data(source_url, target)
        with Database(target) as db:
            rows = {str(r["id"]): r for r in _memories(db)}
        assert rows[str(uuid.UUID(key))]["updated_at"].isoformat() == (
            "2026-01-01T10:00:00.250000+00:00"
        )


def _memories(db: Database) -> list[dict[str, object]]:
    t = metadata.tables["memories"]
    columns = [c for c in t.columns if c.name != "metadata"]
    with db.connect() as connection:
        return [dict(r) for r in connection.execute(select(*columns).order_by(t.c.id)).mappings()]


def test_target_holding_data_is_refused(source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    transfer.migrate(source_url, target, tables=["tenants"], settings=settings())
    with pytest.raises(ConflictError, match="already holds rows in: tenants"):
        transfer.migrate(source_url, target, settings=settings())
    with Database(target) as db:
        assert len(table_rows(db, "projects")) == 0  # nothing written


def test_bad_input(source_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(InvalidInputError, match="Unknown table"):
        transfer.migrate(source_url, target, tables=["nope"], settings=settings())
    with pytest.raises(InvalidInputError, match="batch_size"):
        transfer.migrate(source_url, target, batch_size=0, settings=settings())
    absent = tmp_path / "absent" / "source.db"
    with pytest.raises(InvalidInputError, match="source database does not exist"):
        transfer.migrate(f"sqlite:///{absent}", target, settings=settings())
    assert not absent.parent.exists()  # reading a database never creates one
    (tmp_path / "empty.db").touch()
    with pytest.raises(InvalidInputError, match="source database is not a ctxbase database"):
        transfer.migrate(f"sqlite:///{tmp_path / 'empty.db'}", target, settings=settings())
    assert not Path(target.removeprefix("sqlite:///")).exists()  # nor the target, then
    with pytest.raises(InvalidInputError, match="Not a job id"):
        transfer.resume("42", target, settings=settings())


def test_an_endpoint_of_another_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="Not a database URL, Store or Database"):
        transfer.migrate(tmp_path, f"sqlite:///{tmp_path / 'target.db'}")  # type: ignore[arg-type]
    assert not (tmp_path / "target.db").exists()
