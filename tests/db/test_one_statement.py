"""``Database.raw(write=True, one_statement=True)``: a write of one statement committed on
its own (autocommit), on every backend, leaving its connection as it found it."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select

from ctxbase.db import migrate
from ctxbase.db.database import Database
from ctxbase.db.schema import StoreSetting, table, utcnow
from ctxbase.errors import CtxbaseError

settings = table(StoreSetting)


def test_a_one_statement_write_commits_by_itself(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate.upgrade(db)
        add = db.prepared("test.one_statement.add", lambda: insert(settings))
        read = db.prepared(
            "test.one_statement.read",
            lambda: select(settings.c.value).where(settings.c.key == bindparam("key")),
        )
        with db.raw(write=True, one_statement=True) as cursor:
            add.rows(cursor, {"key": "a", "value": {"n": 1}, "updated_at": utcnow()})
        with db.raw() as cursor:  # another connection, or the same one, sees it
            assert read.first(cursor, {"key": "a"}) == {"value": {"n": 1}}
        with db.connect() as connection:  # and the pool's connections still run transactions
            assert connection.execute(select(settings.c.key)).scalars().all() == ["a"]

        # a failed statement raises a ctxbase error and leaves nothing behind
        with pytest.raises(CtxbaseError), db.raw(write=True, one_statement=True) as cursor:
            add.rows(cursor, {"key": "a", "value": {"n": 2}, "updated_at": utcnow()})
        with db.raw(write=True, one_statement=True) as cursor:
            add.rows(cursor, {"key": "b", "value": {"n": 3}, "updated_at": utcnow()})
        with db.connect() as connection:
            rows = connection.execute(select(settings.c.key, settings.c.value)).all()
        assert sorted(rows) == [("a", {"n": 1}), ("b", {"n": 3})]
    finally:
        db.dispose()
