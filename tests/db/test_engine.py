"""Engines: SQLite pragmas and concurrency, PostgreSQL pool settings."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

import ctxbase
from ctxbase.db.schema import Project, Tenant
from ctxbase.errors import DatabaseBusyError
from tests.conftest import open_store


def _add_tenant(store: ctxbase.Store, slug: str) -> None:
    with store.db.session(write=True) as session:
        # read, then write: the pattern that fails at once under deferred transactions
        session.scalar(select(func.count()).select_from(Tenant))
        tenant = Tenant(slug=slug, name=slug)
        session.add(tenant)
        session.flush()
        session.add(Project(tenant_id=tenant.id, slug="default", name="Default"))


def _tenant_count(store: ctxbase.Store) -> int:
    """Tenants written by the test (the store makes tenant `default` itself)."""
    with store.db.session() as session:
        query = select(func.count()).select_from(Tenant).where(Tenant.slug != "default")
        return session.scalar(query) or 0


def test_sqlite_file_pragmas(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'p.db'}", sqlite_busy_timeout_ms=4321) as store:
        with store.db.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("busy_timeout") == 4321


def test_sqlite_file_is_created_with_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "agents.db"
    with open_store(f"sqlite:///{path}"):
        assert path.exists()


def test_writer_threads_never_see_database_locked(store: ctxbase.Store) -> None:
    threads_count, writes_each = 8, 25
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(writes_each):
                _add_tenant(store, f"w{worker}-{i}")
                assert _tenant_count(store) >= 1  # readers interleave with writers
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert _tenant_count(store) == threads_count * writes_each


def _write_from_process(url: str, worker: int, count: int) -> None:
    with open_store(url) as store:
        for i in range(count):
            _add_tenant(store, f"p{worker}-{i}")


def test_several_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with open_store(url):
        pass  # schema first, so processes race on data only
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_from_process, args=(url, w, 40)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with open_store(url) as store:
        assert _tenant_count(store) == 160


def test_busy_timeout_exceeded_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with open_store(url) as holder, open_store(url, sqlite_busy_timeout_ms=50) as waiter:
        with holder.db.connect(write=True) as connection:
            connection.execute(text("DELETE FROM tenants"))  # holds the write lock
            with pytest.raises(DatabaseBusyError) as caught:
                _add_tenant(waiter, "blocked")
    assert "CTXBASE_SQLITE_BUSY_TIMEOUT_MS" in (caught.value.hint or "")


def test_in_memory_store_is_shared_by_threads() -> None:
    with open_store("memory://") as store:
        threads = [threading.Thread(target=_add_tenant, args=(store, f"m{i}")) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _tenant_count(store) == 10


def test_in_memory_stores_are_separate() -> None:
    with open_store("sqlite://") as first, open_store("sqlite://") as second:
        _add_tenant(first, "only-here")
        assert (_tenant_count(first), _tenant_count(second)) == (1, 0)


def test_postgres_pool_settings(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        options = dict(pool_size=3, max_overflow=2, pool_timeout=7, pool_recycle=99)
        with open_store(url, **options) as store:
            pool = store.db.engine.pool
            assert pool.size() == 3
            assert pool._max_overflow == 2  # type: ignore[attr-defined]
            assert pool._timeout == 7  # type: ignore[attr-defined]
            assert pool._recycle == 99
            assert store.settings.pool_pre_ping is True
            assert store.db.engine.url.drivername == "postgresql+psycopg"


def test_idle_pre_ping_replaces_a_dead_connection(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        with open_store(url, pool_size=1, pool_pre_ping_idle_seconds=0) as store:
            with store.db.connect() as connection:
                pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            postgres.execute(f"SELECT pg_terminate_backend({pid})")
            with store.db.connect() as connection:  # the ping finds it dead; a new one serves
                assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
            assert store.check_connection().status == "ok"


def test_postgres_accepts_plain_postgresql_url(postgres, postgres_template) -> None:
    with postgres.database(template=postgres_template) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with open_store(plain) as store:
            assert store.check_connection().status == "ok"
            tenant = f"t-{uuid.uuid4().hex[:6]}"
            _add_tenant(store, tenant)
            assert _tenant_count(store) == 1
