"""The prepared-statement path: same values as the Core path, clean connections after errors."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import DateTime, bindparam, insert, select
from sqlalchemy.dialects import sqlite

import ctxbase
from ctxbase.db.schema import Message as MessageRow
from ctxbase.db.schema import new_id, table
from ctxbase.db.types import UTCDateTime
from ctxbase.errors import (
    ConflictError,
    DatabaseBusyError,
    DatabaseUnavailableError,
    NotFoundError,
)
from ctxbase.records import Message
from tests.conftest import open_store, run_in_threads

messages = table(MessageRow)


def _appended(store: ctxbase.Store, count: int = 3) -> list[Message]:
    chat = store.conversations.create(title="prepared")
    return store.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": f"line {i}", "metadata": {"i": i, "nested": [1, "x"]}}
            for i in range(count)
        ],
    )


def test_records_equal_rows_validated(store: ctxbase.Store) -> None:
    """Records built from the driver's values equal those built from processed rows."""
    written = _appended(store)
    statement = store.db.prepared(
        "test.messages", lambda: select(messages).where(messages.c.id == bindparam("id"))
    )
    for message in written:
        with store.db.raw() as cursor:
            (record,) = statement.records(cursor, {"id": message.id}, Message)
            (row,) = statement.rows(cursor, {"id": message.id})
        assert record == Message.model_validate(row) == message
        assert record.created_at.utcoffset() == timedelta(0)
        assert record.model_dump() == message.model_dump()


def test_core_and_prepared_paths_read_the_same(store: ctxbase.Store) -> None:
    (message,) = _appended(store, 1)
    with store.db.connect() as connection:
        row = connection.execute(select(messages).where(messages.c.id == message.id)).one()
    assert Message.model_validate(row._mapping) == store.messages.get(message.id)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 1, 19, 25, 34, 123456, tzinfo=UTC),
        datetime(2026, 12, 1, 19, 25, 34, tzinfo=UTC),  # no microseconds: still written
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_sqlite_timestamps_as_sqlalchemy_stores_them(value: datetime) -> None:
    dialect = sqlite.dialect()
    generic_bind = DateTime().dialect_impl(dialect).bind_processor(dialect)
    generic_result = DateTime().dialect_impl(dialect).result_processor(dialect, None)
    ours = UTCDateTime().dialect_impl(dialect)
    bind, result = ours.bind_processor(dialect), ours.result_processor(dialect, None)
    stored = bind(value)
    assert stored == generic_bind(value.astimezone(UTC).replace(tzinfo=None))
    assert result(stored) == generic_result(stored).replace(tzinfo=UTC) == value
    assert result(stored).tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        bind(value.replace(tzinfo=None))


def test_sqlite_timestamps_written_elsewhere_read_as_utc() -> None:
    dialect = sqlite.dialect()
    result = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert result("2026-12-01T19:25:34+05:00") == datetime(2026, 12, 1, 14, 25, 34, tzinfo=UTC)
    assert result("2026-12-01 19:25:34") == datetime(2026, 12, 1, 19, 25, 34, tzinfo=UTC)
    assert result(None) is None


def test_failed_write_leaves_connections_clean(store: ctxbase.Store) -> None:
    """A write that fails inside the block is rolled back; the next ones succeed."""
    (message,) = _appended(store, 1)
    insert_message = store.db.prepared("test.insert", lambda: insert(messages))
    row = {"updated_at": message.created_at, **message.model_dump(), "position": 99}
    for _ in range(3):
        with pytest.raises(ConflictError), store.db.raw(write=True) as cursor:
            insert_message.many(cursor, [row])  # the same id again: a unique violation
    with pytest.raises(RuntimeError), store.db.raw(write=True) as cursor:
        insert_message.many(cursor, [{**row, "id": new_id(), "position": 100}])
        raise RuntimeError("the caller fails after writing")
    with pytest.raises(NotFoundError):
        store.messages.get(new_id())  # the insert above was rolled back, not kept
    chat_id = message.conversation_id
    appended = store.messages.append(chat_id, role="user", content="after the failures")
    assert appended.position == 2
    assert [m.position for m in store.messages.list(chat_id).items] == [1, 2]


def test_sqlite_file_connections_are_reused_and_closed(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'reuse.db'}") as store:
        (message,) = _appended(store, 1)
        connections = store.db.driver_connections
        assert connections is not None
        seen = set()
        for _ in range(5):
            with store.db.raw() as cursor:
                seen.add(id(cursor.connection))
            store.messages.get(message.id)
        assert len(seen) == 1  # one thread, one connection, taken again each time
        idle = [connection for connection, _ in connections._idle]
    for connection in idle:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")


def test_driver_connections_across_threads(persistent_database_url: str) -> None:
    """Threads reading and appending at once each hold their own connection."""
    with open_store(persistent_database_url) as store:
        written = _appended(store, 20)
        chat_id = written[0].conversation_id

        def work() -> None:
            for message in written:
                assert store.messages.get(message.id) == message
                store.messages.append(chat_id, role="tool", content="x")

        assert run_in_threads(work, 6) == []
        positions = [m.position for m in store.messages.list(chat_id, limit=1000).items]
        assert positions == list(range(1, 20 + 6 * 20 + 1))
        assert store.db.driver_connections is not None
        assert 1 <= len(store.db.driver_connections._idle) <= store.settings.pool_size


def _backend_pid(store: ctxbase.Store) -> int:
    with store.db.raw() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


def test_postgres_reads_reuse_one_autocommit_connection(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        with open_store(url) as store:
            (message,) = _appended(store, 1)
            pids = {_backend_pid(store) for _ in range(5)}
            assert len(pids) == 1
            with store.db.raw() as cursor:
                assert cursor.connection.autocommit
                connection = cursor.connection
            assert store.messages.get(message.id) == message
        assert connection.closed  # closing the store closed the idle read connection


def test_postgres_dead_read_connection_replaced_after_idle_ping(postgres, postgres_template):
    with postgres.database(template=postgres_template) as url:
        with open_store(url, pool_pre_ping_idle_seconds=0) as store:
            (message,) = _appended(store, 1)
            pid = _backend_pid(store)
            postgres.execute(f"SELECT pg_terminate_backend({pid})")
            assert store.messages.get(message.id) == message  # the ping found it dead
            assert _backend_pid(store) != pid


def test_postgres_broken_read_connection_is_not_kept(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        with open_store(url, pool_pre_ping=False) as store:
            (message,) = _appended(store, 1)
            pid = _backend_pid(store)
            postgres.execute(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(DatabaseUnavailableError):
                store.messages.get(message.id)
            assert store.messages.get(message.id) == message
            assert _backend_pid(store) != pid


def test_postgres_read_connections_recycled(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        with open_store(url, pool_recycle=1) as store:
            pid = _backend_pid(store)
            assert _backend_pid(store) == pid
            time.sleep(1.1)
            assert _backend_pid(store) != pid


def test_a_caller_waiting_for_a_driver_connection_gets_one_given_back(
    persistent_database_url: str,
) -> None:
    """At the limit, a caller waits; the connection given back goes to it, and no more
    connections are made than the limit."""
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 10}
    with open_store(persistent_database_url, **options) as store:
        (message,) = _appended(store, 1)
        got: list[Message] = []
        with store.db.raw() as held:
            reader = threading.Thread(target=lambda: got.append(store.messages.get(message.id)))
            reader.start()
            time.sleep(0.3)
            assert got == []  # waiting for the one connection
            held_connection = held.connection
        reader.join(timeout=10)
        assert got == [message]
        with store.db.raw() as cursor:
            assert cursor.connection is held_connection  # the one connection, reused


def test_driver_connections_are_limited(persistent_database_url: str) -> None:
    """As with the pool: past pool_size + max_overflow connections out, a caller waits,
    then gets DatabaseBusyError."""
    options = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 0.2}
    with open_store(persistent_database_url, **options) as store:
        with store.db.raw() as first, store.db.raw() as second:
            assert first.connection is not second.connection
            with pytest.raises(DatabaseBusyError), store.db.raw():
                pass
        with store.db.raw() as cursor:  # every connection was given back
            cursor.execute("SELECT 1")
