"""SQLite → PostgreSQL → SQLite with every kind of record: every table equal at the end.

The source holds a row in every table the transfer copies and a value in every column
(``assert_fills_every_column``), so a table or column the copy forgets fails here."""

from __future__ import annotations

from pathlib import Path

from ctxbase import transfer
from ctxbase.db.database import Database
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_fills_every_column, assert_same_data, fill, settings


def test_sqlite_postgres_sqlite_round_trip(tmp_path: Path, postgres: PostgresServer) -> None:
    start = f"sqlite:///{tmp_path / 'start.db'}"
    end = f"sqlite:///{tmp_path / 'end.db'}"
    with open_store(start) as store:
        fill(store)
    with Database(start) as db:
        assert_fills_every_column(db)
    with postgres.database() as middle:
        there = transfer.migrate(start, middle, batch_size=7, settings=settings())
        assert there.status == "completed", there.error_log
        assert there.verification is not None and there.verification.passed
        assert_same_data(start, middle)
        back = transfer.migrate(middle, end, batch_size=5, settings=settings())
        assert back.status == "completed", back.error_log
    assert_same_data(start, end)
