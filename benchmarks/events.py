"""Event appends per second with 1 and 8 writers, next to raw INSERTs of the same rows.

    python -m benchmarks.events [--events 4000] [--backend postgresql|sqlite|both]

For each backend (an SQLite WAL file; PostgreSQL embedded, or CTXBASE_BENCH_POSTGRES_URL)
and each writer count, in one run:

- ctxbase: ``store.events.append`` from N threads, one event per call (each call its own
  transaction as far as the caller can tell, gapless sequences in commit order);
- raw:     the driver inserting the same rows from N threads, one INSERT and COMMIT per
  row, with sequences handed out in Python (no ordering guarantee across writers).

prints events/s and the ratio ctxbase / raw. Target: >= 2,000 events/s with 8 writers on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.db.schema import new_id


def threaded_rate(writers: int, total: int, append: Callable[[int], None]) -> float:
    """Events per second of ``writers`` threads sharing ``total`` appends."""
    per_writer = total // writers
    barrier = threading.Barrier(writers + 1)

    def run(index: int) -> None:
        barrier.wait()
        for n in range(per_writer):
            append(index * per_writer + n)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return per_writer * writers / (time.perf_counter() - started)


class RawWriter:
    """One driver connection per thread, inserting event rows one transaction each."""

    def __init__(self, connect: Callable[[], Any], placeholder: str, ids: tuple[Any, Any]):
        self._connect = connect
        self._local = threading.local()
        self._sequence = itertools.count(10_000_000)
        self._project, self._tenant = ids
        marks = ", ".join([placeholder] * 8)
        self._sql = (
            "INSERT INTO events (id, project_id, tenant_id, sequence, event_type, data,"
            f" metadata, created_at) VALUES ({marks})"
        )
        self._sqlite = placeholder == "?"

    def append(self, i: int) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        row = (
            new_id().hex if self._sqlite else new_id(),
            self._project,
            self._tenant,
            next(self._sequence),
            "bench.tick",
            json.dumps({"i": i}),
            "{}",
            datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            if self._sqlite
            else datetime.now(UTC),
        )
        if self._sqlite:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(self._sql, row)
            connection.execute("COMMIT")
        else:
            with connection.transaction():
                connection.execute(self._sql, row)


def measure(backend: str, url_of: Callable[[], AbstractContextManager[str]], total: int) -> None:
    with url_of() as url, ctxbase.open(url, embedder="none") as store:
        project = store.projects.get("default")
        with store.db.connect() as connection:
            tenant = connection.exec_driver_sql(
                "SELECT tenant_id FROM projects WHERE id = ?"
                if backend == "sqlite"
                else "SELECT tenant_id FROM projects WHERE id = %(p)s",
                (project.id.hex,) if backend == "sqlite" else {"p": project.id},
            ).scalar()
        if backend == "sqlite":
            path = store.db.url.sqlite_path

            def connect() -> Any:
                connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA busy_timeout=30000")
                connection.execute("PRAGMA synchronous=NORMAL")
                return connection

            raw = RawWriter(connect, "?", (project.id.hex, uuid.UUID(str(tenant)).hex))
        else:
            plain = url.replace("postgresql+psycopg://", "postgresql://")
            raw = RawWriter(lambda: psycopg.connect(plain), "%s", (project.id, tenant))
        for writers in (1, 8):
            ours = threaded_rate(
                writers, total, lambda i: store.events.append("bench.tick", {"i": i})
            )
            theirs = threaded_rate(writers, total, raw.append)
            print(
                f"{backend:<10} {writers} writer(s)  ctxbase {ours:8.0f} events/s   "
                f"raw INSERT {theirs:8.0f} rows/s   ratio {ours / theirs:5.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="appends per measurement")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        measure("sqlite", sqlite_url, args.events)
    if args.backend in ("postgresql", "both"):
        measure("postgresql", postgres_url, args.events)


if __name__ == "__main__":
    main()
