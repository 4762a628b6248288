# ruff: noqa: E402 - the path is set before the imports (see below)
"""LangGraph checkpoints: CtxbaseSaver next to LangGraph's own SQLite and PostgreSQL savers.

    python benchmarks/langgraph.py [--checkpoints 2000] [--threads 20]

In one run, on the same machine: ``put`` and ``get_tuple`` per second of
``CtxbaseSaver`` on an SQLite file and on PostgreSQL (embedded, or the server of
CTXBASE_BENCH_POSTGRES_URL), and of ``SqliteSaver`` (langgraph-checkpoint-sqlite) and
``PostgresSaver`` (langgraph-checkpoint-postgres) on the same kind of database.

Same work: every saver stores the very same checkpoints (a chat-like state: a list of
messages, a text and a counter, all three channels new in each), spread over the same
threads, each the child of the previous one of its thread, with the same metadata; then
reads each back by its id (``get_tuple``, pending writes included). The savers take
turns by blocks of operations, so a busy moment of the machine hits all of them; a rate
is the median of the blocks.

SQLite: ``SqliteSaver`` runs on its own ``sqlite3`` connection in WAL mode as it sets
itself up, where SQLite syncs the log at every commit (``synchronous=FULL``, the
default); ctxbase sets ``synchronous=NORMAL`` (a commit survives a crash of the process,
not necessarily of the machine). Both are printed: ``SqliteSaver`` as shipped, and with
``synchronous=NORMAL`` (the like-with-like figure). PostgreSQL: ``PostgresSaver`` on one
connection in autocommit, as ``from_conn_string`` makes it (the fastest way it runs).
Target: CtxbaseSaver >= 1x on both.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on the path, and the file's own
# name would hide the langgraph package: look in the checkout's root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.integrations.langgraph import CtxbaseSaver

BLOCK = 100
WARM_UP = 50

Operation = Callable[[int], Any]


class Workload:
    """The checkpoints every saver stores, their configs and metadata."""

    def __init__(self, count: int, threads: int) -> None:
        self.count, self.threads = count, threads
        self.thread_ids = [f"thread-{uuid.uuid4().hex[:8]}-{t}" for t in range(threads)]
        self.checkpoints = [self._checkpoint(i) for i in range(count)]

    def _checkpoint(self, i: int) -> Checkpoint:
        messages = [
            {"role": "user" if m % 2 else "assistant", "content": f"message {m} of step {i}"}
            for m in range(4)
        ]
        values = {"messages": messages, "summary": f"summary of step {i} " * 12, "step": i}
        versions = {name: f"{i + 1:032}.{0.5:016}" for name in values}
        return Checkpoint(
            v=4,
            id=str(uuid6(clock_seq=i)),
            ts=datetime.now(UTC).isoformat(),
            channel_values=values,
            channel_versions=versions,
            versions_seen={"agent": dict(versions)},
            updated_channels=list(values),
        )

    def thread(self, i: int) -> str:
        return self.thread_ids[i % self.threads]

    def put(self, saver: BaseCheckpointSaver[Any]) -> Operation:
        def put(i: int) -> Any:
            checkpoint = self.checkpoints[i]
            configurable = {"thread_id": self.thread(i), "checkpoint_ns": ""}
            if i >= self.threads:
                configurable["checkpoint_id"] = self.checkpoints[i - self.threads]["id"]
            metadata = {"source": "loop", "step": i, "parents": {}}
            return saver.put(
                {"configurable": configurable},
                checkpoint,
                metadata,  # type: ignore[arg-type]
                checkpoint["channel_versions"],
            )

        return put

    def get(self, saver: BaseCheckpointSaver[Any]) -> Operation:
        def get(i: int) -> Any:
            config = {
                "configurable": {
                    "thread_id": self.thread(i),
                    "checkpoint_ns": "",
                    "checkpoint_id": self.checkpoints[i]["id"],
                }
            }
            found = saver.get_tuple(config)  # type: ignore[arg-type]
            assert found is not None
            return found

        return get


def rates(operations: dict[str, Operation], count: int) -> dict[str, tuple[float, float]]:
    """Per name: operations per second by the wall clock and by this thread's CPU time,
    the median of blocks taken in turns. Indices ``count`` and above warm up."""
    for operation in operations.values():
        for i in range(count, count + WARM_UP):
            operation(i)
    wall: dict[str, list[float]] = {name: [] for name in operations}
    cpu: dict[str, list[float]] = {name: [] for name in operations}
    for start in range(0, count, BLOCK):
        done = min(start + BLOCK, count) - start
        for name, operation in operations.items():
            began, began_cpu = time.perf_counter(), time.thread_time()
            for i in range(start, start + done):
                operation(i)
            wall[name].append(done / (time.perf_counter() - began))
            cpu[name].append(done / max(time.thread_time() - began_cpu, 1e-9))
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in wall}


@contextmanager
def sqlite_saver(path: Path, *, synchronous: str | None) -> Iterator[SqliteSaver]:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(connection)
        saver.setup()  # WAL, as the saver sets itself up
        if synchronous:
            connection.execute(f"PRAGMA synchronous={synchronous}")
        yield saver
    finally:
        connection.close()


def measure_sqlite(workload: Workload) -> list[tuple[str, str, float, float]]:
    with sqlite_url() as url, ctxbase.open(url, embedder="none") as store:
        directory = Path(store.db.url.sqlite_path or "").parent
        with (
            sqlite_saver(directory / "official.db", synchronous=None) as shipped,
            sqlite_saver(directory / "normal.db", synchronous="NORMAL") as normal,
        ):
            savers: dict[str, BaseCheckpointSaver[Any]] = {
                "CtxbaseSaver": CtxbaseSaver(store),
                "SqliteSaver": shipped,
                "SqliteSaver (NORMAL)": normal,
            }
            return compare("sqlite", workload, savers)


def measure_postgres(workload: Workload) -> list[tuple[str, str, float, float]]:
    with postgres_url() as url, ctxbase.open(url, embedder="none") as store:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with PostgresSaver.from_conn_string(plain) as official:
            official.setup()
            savers = {"CtxbaseSaver": CtxbaseSaver(store), "PostgresSaver": official}
            return compare("postgresql", workload, savers)


def compare(
    backend: str, workload: Workload, savers: dict[str, BaseCheckpointSaver[Any]]
) -> list[tuple[str, str, float, float]]:
    rows = []
    for kind, make in (("put", workload.put), ("get_tuple", workload.get)):
        measured = rates({name: make(saver) for name, saver in savers.items()}, workload.count)
        for name, (wall, cpu) in measured.items():
            rows.append((backend, f"{kind:<9} {name}", wall, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=20)
    args = parser.parse_args()
    workload = Workload(args.checkpoints + WARM_UP, args.threads)
    workload.count = args.checkpoints
    rows = measure_sqlite(workload) + measure_postgres(workload)
    print(f"{'backend':<11} {'operation and saver':<32} {'ops/s':>8} {'cpu ops/s':>10}")
    for backend, label, wall, cpu in rows:
        print(f"{backend:<11} {label:<32} {wall:>8.0f} {cpu:>10.0f}")
    print()
    print(f"{'backend':<11} {'ratio CtxbaseSaver / official':<40} {'wall':>6} {'cpu':>6}")
    ours = {(b, label.split()[0]): (w, c) for b, label, w, c in rows if "Ctxbase" in label}
    for backend, label, wall, cpu in rows:
        if "Ctxbase" in label:
            continue
        kind = label.split()[0]
        mine_wall, mine_cpu = ours[(backend, kind)]
        official = label.split(maxsplit=1)[1]
        print(
            f"{backend:<11} {kind + ' vs ' + official:<40}"
            f" {mine_wall / wall:>6.2f} {mine_cpu / cpu:>6.2f}"
        )


if __name__ == "__main__":
    main()
