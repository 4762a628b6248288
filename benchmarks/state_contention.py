"""Compare-and-set on one state key under contention: conflicts per success.

    python -m benchmarks.state_contention [--processes 4] [--threads 8]
        [--increments 25] [--backend postgresql|sqlite|both]

Every thread of every process increments one counter ``--increments`` times the way an
agent would: read the entry, write ``value + 1`` with ``expected_version`` set to the
version read, and on a version conflict read again and retry. Prints, per backend, the
successful increments per second, the conflicts (retries) per success, and checks that
no increment was lost. PostgreSQL is embedded unless CTXBASE_BENCH_POSTGRES_URL names a
server.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from multiprocessing.synchronize import Barrier

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.errors import VersionConflictError

KEY = "counter"


def _open(url: str, threads: int) -> ctxbase.Store:
    return ctxbase.open(url, auth="disabled", embedder="none", pool_size=threads + 2)


def _increment(store: ctxbase.Store, times: int, conflicts: list[int]) -> None:
    for _ in range(times):
        while True:
            entry = store.state.get(KEY)
            try:
                store.state.put(KEY, entry.value + 1, expected_version=entry.version)
                break
            except VersionConflictError:
                conflicts.append(1)


def _process(url: str, threads: int, times: int, start: Barrier, results: object) -> None:
    with _open(url, threads) as store:
        store.state.get(KEY)  # connections and caches warm before the clock starts
        conflicts: list[int] = []
        workers = [
            threading.Thread(target=_increment, args=(store, times, conflicts))
            for _ in range(threads)
        ]
        start.wait()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        results.put(len(conflicts))  # type: ignore[attr-defined]


def run(url: str, processes: int, threads: int, times: int) -> tuple[float, float]:
    """(successes per second, conflicts per success) of one run on ``url``."""
    with _open(url, threads) as store:
        store.state.put(KEY, 0)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(target=_process, args=(url, threads, times, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    conflicts = sum(results.get() for _ in workers)
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join()
    successes = processes * threads * times
    with _open(url, threads) as store:
        final = store.state.get(KEY)
    assert final.value == successes, f"lost increments: {final.value} != {successes}"
    return successes / seconds, conflicts / successes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--increments", type=int, default=25)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    backends = {"postgresql": postgres_url, "sqlite": sqlite_url}
    names = list(backends) if args.backend == "both" else [args.backend]
    print(f"{args.processes} processes x {args.threads} threads, one key")
    for name in names:
        with backends[name]() as url:
            rate, ratio = run(url, args.processes, args.threads, args.increments)
        print(f"{name:10}  {rate:8.0f} successes/s  {ratio:6.2f} conflicts per success")


if __name__ == "__main__":
    main()
