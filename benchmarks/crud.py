"""Store appends and reads against the same work in raw SQL, on the same database.

    python benchmarks/crud.py [--operations 2000]

For SQLite (a file, WAL) and PostgreSQL (embedded, or CTXBASE_BENCH_POSTGRES_URL) it
times, in one run:

- append: ``store.messages.append`` vs. the raw driver doing what an append must do
  (one transaction: bump the conversation's counter and token totals where the
  conversation is in the caller's project, insert the row);
- read:   ``store.messages.get`` vs. ``SELECT … WHERE id = … AND project_id = …`` on the
  raw driver.

Like with like: both check, in the same statement, that the row belongs to the caller's
project of an active tenant, as any multi-tenant store must, and both return the same
validated record, a ``ctxbase.records.Message`` (the raw loop decodes the row's JSON
where the driver leaves it as text, and calls ``Message.model_validate`` as the store
does; the run checks that the two records of one row are equal). The two take turns by
blocks of operations, so a busy moment of the machine hits both; the rate is the median
of the blocks. It prints operations per second and the ratio Store / raw (target: >= 0.7),
and for SQLite the same ratio by this thread's CPU time ("cpu"), which a busy machine
disturbs less.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.records import Message

#: The caller's project, checked in the same statement (as the store does).
SQLITE_PROJECT = (
    "(SELECT projects.id FROM projects JOIN tenants ON tenants.id = projects.tenant_id"
    " WHERE tenants.slug = 'default' AND tenants.is_active IS 1 AND projects.slug = 'default')"
)
POSTGRES_PROJECT = SQLITE_PROJECT.replace("IS 1", "IS true")
#: The columns a message record is made of, as a hand-written query would name them.
MESSAGE_COLUMNS = tuple(Message.model_fields)
SELECT_MESSAGE = f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages"
BLOCK = 100


def rates(
    ours: Callable[[int], Any], theirs: Callable[[int], Any], count: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Operations per second of each, taking turns by blocks; the median block counts.

    Returned twice: by the wall clock, and by this thread's CPU time. The second leaves
    out the time other processes hold the core, so on a busy machine it is the steadier
    measure where all the work is in this process (SQLite); it says nothing of a server's
    work (PostgreSQL)."""
    for i in range(min(50, count)):  # warm up caches, pools and prepared statements
        ours(i)
        theirs(i)
    wall: dict[Callable[[int], Any], list[float]] = {ours: [], theirs: []}
    cpu: dict[Callable[[int], Any], list[float]] = {ours: [], theirs: []}
    for start in range(0, count, BLOCK):
        done = min(start + BLOCK, count) - start
        for operation in (ours, theirs):
            began, began_cpu = time.perf_counter(), time.thread_time()
            for i in range(start, start + done):
                operation(i)
            wall[operation].append(done / (time.perf_counter() - began))
            cpu[operation].append(done / max(time.thread_time() - began_cpu, 1e-9))
    return (
        (statistics.median(wall[ours]), statistics.median(wall[theirs])),
        (statistics.median(cpu[ours]), statistics.median(cpu[theirs])),
    )


class RawSQLite:
    def __init__(self, path: str, conversation: uuid.UUID, project: uuid.UUID) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            self.db.execute(f"PRAGMA {pragma}")
        self.conversation, self.project = conversation, project
        self.ids: list[str] = []

    def append(self, i: int) -> Message:
        now = datetime.now(UTC)
        stored_now = now.replace(tzinfo=None).isoformat(sep=" ")
        self.db.execute("BEGIN IMMEDIATE")
        (position,) = self.db.execute(
            "UPDATE conversations SET message_count = message_count + 1,"
            " input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, updated_at = ?"
            f" WHERE id = ? AND project_id = {SQLITE_PROJECT} RETURNING message_count",
            (3, 0, stored_now, self.conversation.hex),
        ).fetchone()
        message_id = uuid.uuid4()
        metadata = {"i": i}
        content = f"raw message {i}"
        self.db.execute(
            "INSERT INTO messages (id, project_id, conversation_id, position, role, content,"
            " input_tokens, output_tokens, metadata, created_at)"
            " VALUES (?, ?, ?, ?, 'user', ?, 3, 0, ?, ?)",
            (
                message_id.hex,
                self.project.hex,
                self.conversation.hex,
                position,
                content,
                json.dumps(metadata),
                stored_now,
            ),
        )
        self.db.execute("COMMIT")
        self.ids.append(message_id.hex)
        return new_message(
            message_id, self.project, self.conversation, position, content, metadata, now
        )

    def read(self, i: int) -> Message:
        values = self.db.execute(
            f"{SELECT_MESSAGE} WHERE id = ? AND project_id = {SQLITE_PROJECT}", (self.ids[i],)
        ).fetchone()
        assert values is not None
        row = dict(zip(MESSAGE_COLUMNS, values, strict=True))
        row["metadata"] = json.loads(row["metadata"])  # SQLite hands JSON back as text
        return Message.model_validate(row)


class RawPostgres:
    def __init__(self, url: str, conversation: uuid.UUID, project: uuid.UUID) -> None:
        # Autocommit: a read is one round trip, as the store's; appends open a transaction.
        self.db = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )
        self.conversation, self.project = conversation, project
        self.ids: list[uuid.UUID] = []

    def append(self, i: int) -> Message:
        now = datetime.now(UTC)
        metadata = {"i": i}
        content = f"raw message {i}"
        with self.db.transaction():
            bumped = self.db.execute(
                "UPDATE conversations SET message_count = message_count + 1,"
                " input_tokens = input_tokens + %s, output_tokens = output_tokens + %s,"
                f" updated_at = %s WHERE id = %s AND project_id = {POSTGRES_PROJECT}"
                " RETURNING message_count",
                (3, 0, now, self.conversation),
            ).fetchone()
            assert bumped is not None, "the conversation is in the project"
            (position,) = bumped
            message_id = uuid.uuid4()
            self.db.execute(
                "INSERT INTO messages (id, project_id, conversation_id, position, role, content,"
                " input_tokens, output_tokens, metadata, created_at)"
                " VALUES (%s, %s, %s, %s, 'user', %s, 3, 0, %s, %s)",
                (
                    message_id,
                    self.project,
                    self.conversation,
                    position,
                    content,
                    json.dumps(metadata),
                    now,
                ),
            )
        self.ids.append(message_id)
        return new_message(
            message_id, self.project, self.conversation, position, content, metadata, now
        )

    def read(self, i: int) -> Message:
        values = self.db.execute(
            f"{SELECT_MESSAGE} WHERE id = %s AND project_id = {POSTGRES_PROJECT}",
            (self.ids[i],),
        ).fetchone()
        assert values is not None
        return Message.model_validate(dict(zip(MESSAGE_COLUMNS, values, strict=True)))


def new_message(
    message_id: uuid.UUID,
    project: uuid.UUID,
    conversation: uuid.UUID,
    position: int,
    content: str,
    metadata: dict[str, Any],
    created_at: datetime,
) -> Message:
    """The record of a message the raw loop just inserted, as the store returns it."""
    return Message.model_validate(
        {
            "id": message_id,
            "conversation_id": conversation,
            "project_id": project,
            "position": position,
            "role": "user",
            "content": content,
            "thinking": None,
            "input_tokens": 3,
            "output_tokens": 0,
            "finish_reason": None,
            "metadata": metadata,
            "created_at": created_at,
        }
    )


def measure(name: str, url: str, operations: int) -> list[tuple[str, str, float, float, float]]:
    # The raw SQL embeds nothing either: measure the store, not the embedding model.
    with ctxbase.open(url, embedder="none") as store:
        mine = store.conversations.create(title="store")
        theirs = store.conversations.create(title="raw")
        if store.backend == "sqlite":
            raw: RawSQLite | RawPostgres = RawSQLite(
                store.db.url.sqlite_path or "", theirs.id, theirs.project_id
            )
        else:
            raw = RawPostgres(url, theirs.id, theirs.project_id)
        ids: list[uuid.UUID] = []

        def store_append(i: int) -> None:
            message = store.messages.append(
                mine.id,
                role="user",
                content=f"store message {i}",
                input_tokens=3,
                metadata={"i": i},
            )
            ids.append(message.id)

        results = []
        (store_rate, raw_rate), (store_cpu, raw_cpu) = rates(store_append, raw.append, operations)
        results.append((name, "append", store_rate, raw_rate, store_cpu / raw_cpu))
        # Like with like: the raw loop's record is the very one the store returns.
        assert raw.read(0) == store.messages.get(raw.ids[0])
        (store_rate, raw_rate), (store_cpu, raw_cpu) = rates(
            lambda i: store.messages.get(ids[i]), raw.read, operations
        )
        results.append((name, "read", store_rate, raw_rate, store_cpu / raw_cpu))
        raw.db.close()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    with sqlite_url() as url:
        rows += measure("sqlite", url, args.operations)
    with postgres_url() as url:
        rows += measure("postgresql", url, args.operations)
    print(f"{'backend':<11} {'operation':<9} {'store/s':>9} {'raw/s':>9} {'ratio':>6} {'cpu':>6}")
    for backend, operation, store_rate, raw_rate, cpu_ratio in rows:
        ratio = store_rate / raw_rate
        cpu = f"{cpu_ratio:>6.2f}" if backend == "sqlite" else f"{'-':>6}"
        print(
            f"{backend:<11} {operation:<9} {store_rate:>9.0f} {raw_rate:>9.0f} {ratio:>6.2f} {cpu}"
        )


if __name__ == "__main__":
    main()
