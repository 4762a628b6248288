"""Deletion leaves no trace: a deleted conversation, memory or context unit is readable
nowhere in the database (SQLite's file and full-text indexes included) nor in a backup
made afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

import ctxbase
from ctxbase.db.fulltext.sqlite_erasure import SEARCHABLE
from ctxbase.transfer.backup import backup

# Indexed words share no prefix with the marker (FTS5 stores a term after the bytes it
# shares with the one before it), so a raw search of the bytes would find the marker.
MARKER = "zqxjvkw"
KEPT = "kept apple banana cherry"


def _write_conversation(store: ctxbase.Store) -> Callable[[], None]:
    conversation = store.conversations.create(title="about a thing")
    for n in range(3):
        store.messages.append(conversation.id, role="user", content=f"{KEPT} {MARKER} {n}")
    return lambda: store.conversations.delete(conversation.id)


def _write_memory(store: ctxbase.Store) -> Callable[[], None]:
    memory = store.memories.add(f"first {MARKER} fact")
    store.memories.update(memory.id, content=f"second {MARKER} fact")  # history holds both
    return lambda: store.memories.delete(memory.id)


def _write_context(store: ctxbase.Store) -> Callable[[], None]:
    first = store.contexts.add("notes", f"draft {MARKER}")
    store.contexts.update(first.id, content=f"final {MARKER}")
    return lambda: store.contexts.delete(first.id)


KINDS = {"conversation": _write_conversation, "memory": _write_memory, "context": _write_context}


def _write_kept(store: ctxbase.Store) -> None:
    """Rows that stay, so the indexes are not simply emptied."""
    conversation = store.conversations.create(title="kept")
    store.messages.append(conversation.id, role="user", content=KEPT)
    store.memories.add(KEPT)
    store.contexts.add("kept", KEPT)


def _sqlite_bytes(store: ctxbase.Store, tmp_path: Path) -> bytes:
    """The database file after a checkpoint (if any) and a backup made now."""
    found = b""
    path = store.db.url.sqlite_path
    if path:
        with store.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        found += Path(path).read_bytes()
        found += Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b""
    copy = tmp_path / f"backup-{len(list(tmp_path.iterdir()))}.db"
    backup(store.db, copy)
    return found + copy.read_bytes()


def _postgres_rows_with(store: ctxbase.Store, word: str) -> dict[str, int]:
    with store.db.connect() as connection:
        tables = connection.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ).scalars()
        counts = {
            table: connection.execute(
                text(f'SELECT count(*) FROM "{table}" AS r WHERE r::text LIKE :word'),
                {"word": f"%{word}%"},
            ).scalar_one()
            for table in list(tables)
        }
    return {table: count for table, count in counts.items() if count}


def _traces(store: ctxbase.Store, tmp_path: Path) -> bool:
    if store.db.backend.name == "sqlite":
        return MARKER.encode() in _sqlite_bytes(store, tmp_path)
    return bool(_postgres_rows_with(store, MARKER))


@pytest.mark.parametrize("kind", list(KINDS))
def test_deletion_leaves_no_trace(store: ctxbase.Store, tmp_path: Path, kind: str) -> None:
    _write_kept(store)
    delete = KINDS[kind](store)
    assert _traces(store, tmp_path), "the marker should be readable before the delete"

    delete()

    assert not _traces(store, tmp_path)
    hits = store.search(KEPT, mode="text", kinds=["message", "memory", "context"])
    assert len(hits.hits) == 3, "the text index still finds what was kept"


def test_sqlite_connections_zero_freed_pages(tmp_path: Path) -> None:
    with ctxbase.open(f"sqlite:///{tmp_path / 'db.sqlite'}", auth="disabled") as store:
        with store.db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        for name in SEARCHABLE:
            with sqlite3.connect(tmp_path / "db.sqlite") as raw:
                triggers = raw.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (f"{name}_fts_ad",)
                ).fetchone()
            assert "pending_fts_purges" in triggers[0]


def test_upgrade_erases_what_earlier_deletes_left(tmp_path: Path) -> None:
    from ctxbase.db import migrate
    from ctxbase.db.database import Database

    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db, "0007")
    with sqlite3.connect(path, isolation_level=None) as raw:
        raw.execute("PRAGMA secure_delete=ON")  # here only the FTS index keeps the words
        raw.execute(f"INSERT INTO context_units_fts(rowid, content) VALUES (1, '{KEPT}')")
        raw.execute(f"INSERT INTO context_units_fts(rowid, content) VALUES (2, '{MARKER}')")
        raw.execute(
            f"INSERT INTO context_units_fts(context_units_fts, rowid, content) "
            f"VALUES ('delete', 2, '{MARKER}')"
        )
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert MARKER.encode() in path.read_bytes()

    migrate.upgrade(db)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    assert MARKER.encode() not in path.read_bytes()
