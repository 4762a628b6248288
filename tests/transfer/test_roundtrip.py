"""SQLite → PostgreSQL → SQLite with every kind of record: every table equal at the end."""

from __future__ import annotations

from pathlib import Path

from ctxbase import transfer
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, fill, settings


def test_sqlite_postgres_sqlite_round_trip(tmp_path: Path, postgres: PostgresServer) -> None:
    start = f"sqlite:///{tmp_path / 'start.db'}"
    end = f"sqlite:///{tmp_path / 'end.db'}"
    with open_store(start) as store:
        fill(store)
    with postgres.database() as middle:
        there = transfer.migrate(start, middle, batch_size=7, settings=settings())
        assert there.status == "completed", there.error_log
        assert there.verification is not None and there.verification.passed
        assert_same_data(start, middle)
        back = transfer.migrate(middle, end, batch_size=5, settings=settings())
        assert back.status == "completed", back.error_log
    assert_same_data(start, end)
