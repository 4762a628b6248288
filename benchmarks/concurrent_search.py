"""Concurrent vector searches on a 10k-vector SQLite store: library and REST.

    python -m benchmarks.concurrent_search [--vectors 10000] [--threads 8]
        [--searches 400] [--rounds 3]

Below ``CTXBASE_SQLITE_HNSW_MIN_VECTORS`` an SQLite vector search is an exact numpy
product. Prints searches per second:

- library, one thread; then ``--threads`` threads with BLAS splitting each product over
  every core (as before: ``before``) and with each product on its search's thread
  (``now``);
- REST (``ctxbase serve`` in its own process on loopback, ``--threads`` clients): with
  authentication off (``CTXBASE_AUTH=disabled``), with an API key, and, authentication
  off, a server whose products take the BLAS path (``before``; the same switch as the
  library's, set in the server's process before it starts).

Each round measures every line in turn, so a busy moment of the machine hits them all;
each line prints the median of ``--rounds`` rounds (and their range), each ratio the
median of the rounds' ratios (both sides of a ratio measured in the same round).

Targets: concurrent library searches >= 10x the ``before`` rate; REST with a key within
15% of REST without.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import numpy as np
from cryptography.fernet import Fernet

import benchmarks.search as search_benchmark
import ctxbase
from benchmarks._servers import sqlite_url
from ctxbase.db.vectors import blas

#: The server's query embedder (cheap); the vectors are stored under its model name.
EMBEDDER = "hash:384"
search_benchmark.MODEL = EMBEDDER  # the model name benchmarks.search's loader writes
QUERY = {"query": "where is the design note", "kinds": ["context"], "mode": "vector"}
QUERY_OPTIONS = {"k": 10, "threshold": 0.0}


def rate(threads: int, searches: int, search: Callable[[], Any]) -> float:
    """Searches per second of ``threads`` threads sharing ``searches`` searches."""
    each = max(searches // threads, 1)
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(each):
            search()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * each / (time.perf_counter() - began)


@contextmanager
def blas_on_every_core() -> Iterator[None]:
    """As before: every product goes to BLAS, which splits it over every core."""
    kept = blas.OWN_LOOP_FROM_ELEMENTS
    blas.OWN_LOOP_FROM_ELEMENTS = sys.maxsize
    try:
        yield
    finally:
        blas.OWN_LOOP_FROM_ELEMENTS = kept


#: ``python -c`` with this, then ``serve …``: the ``ctxbase`` command in a process whose
#: products all take the BLAS path (:func:`blas_on_every_core`, for good).
SERVE_AS_BEFORE = (
    "import sys\n"
    "from ctxbase.db.vectors import blas\n"
    "blas.OWN_LOOP_FROM_ELEMENTS = sys.maxsize\n"
    "from ctxbase.cli import main\n"
    "main()\n"
)


def library(store: ctxbase.Store, threads: int, searches: int) -> dict[str, float]:
    """One round of the library's lines: searches per second."""

    def search() -> None:
        assert len(store.search(QUERY["query"], **_library_options()).hits) == 10

    search()  # vectors loaded into memory before the clock starts
    single = rate(1, searches // 4, search)
    with blas_on_every_core():
        before = rate(threads, searches // 4, search)
    now = rate(threads, searches, search)
    return {"single": single, "before": before, "now": now}


def _library_options() -> dict[str, Any]:
    return {"kinds": QUERY["kinds"], "mode": QUERY["mode"], **QUERY_OPTIONS}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(url: str, *, auth: str, secret_key: str, before: bool = False) -> Iterator[str]:
    """``ctxbase serve`` on a free loopback port until the block ends; ``before``: with
    every product on the BLAS path."""
    port = _free_port()
    env = {
        **os.environ,
        "CTXBASE_DATABASE_URL": url,
        "CTXBASE_EMBEDDER": EMBEDDER,
        "CTXBASE_AUTH": auth,
        "CTXBASE_SECRET_KEY": secret_key,
        "CTXBASE_RATE_LIMIT_PER_MINUTE": "1000000",
        "CTXBASE_LOG_LEVEL": "warning",
    }
    program = ["-c", SERVE_AS_BEFORE] if before else ["-m", "ctxbase"]
    command = [sys.executable, *program, "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def rest(base: str, key: str | None, threads: int, searches: int) -> float:
    """Searches per second of ``threads`` clients, each with its own connection."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    clients = threading.local()
    made: list[httpx.Client] = []

    def search() -> None:
        if not hasattr(clients, "client"):
            clients.client = httpx.Client(base_url=base, headers=headers, timeout=60)
            made.append(clients.client)
        answer = clients.client.post(
            "/api/v1/projects/default/search", json={**QUERY, **QUERY_OPTIONS}
        )
        answer.raise_for_status()
        assert len(answer.json()["hits"]) == 10

    try:
        rate(threads, threads * 2, search)  # warm: the server's vectors and threads
        return rate(threads, searches, search)
    finally:
        for client in made:
            client.close()


def median(values: list[float]) -> str:
    """The median of the rounds, with their range when there are several."""
    if len(values) == 1:
        return f"{values[0]:7.0f}"
    return f"{statistics.median(values):7.0f} ({min(values):.0f}-{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads, searches = args.threads, args.searches
    secret_key = Fernet.generate_key().decode()
    rounds: list[dict[str, float]] = []
    with (
        sqlite_url() as url,
        ctxbase.open(url, embedder=EMBEDDER, secret_key=secret_key, auth="disabled") as store,
        ExitStack() as servers,
    ):
        vectors = search_benchmark.unit_vectors(np.random.default_rng(1), args.vectors)
        search_benchmark.load(store, vectors)
        key = store.keys.create(role="reader", name="benchmark").key
        print(
            f"{args.vectors} vectors x 384, SQLite exact search, {os.cpu_count()} cores, "
            f"{args.rounds} rounds (median, range)"
        )
        open_server = servers.enter_context
        plain = open_server(server(url, auth="disabled", secret_key=secret_key))
        keyed = open_server(server(url, auth="required", secret_key=secret_key))
        blas_server = open_server(server(url, auth="disabled", secret_key=secret_key, before=True))
        for _ in range(args.rounds):
            measured = library(store, threads, searches)
            measured["rest"] = rest(plain, None, threads, searches)
            measured["rest key"] = rest(keyed, key, threads, searches)
            measured["rest before"] = rest(blas_server, None, threads, searches // 4)
            rounds.append(measured)

    def ratio(over: str, under: str) -> float:
        return statistics.median(r[over] / r[under] for r in rounds)

    lines = [
        ("library, 1 thread", "single", ""),
        (f"library, {threads} threads, BLAS on all cores (before)", "before", ""),
        (
            f"library, {threads} threads, own thread (now)",
            "now",
            f"{ratio('now', 'before'):.1f}x before, target 10x",
        ),
        (f"REST, {threads} clients, BLAS on all cores (before)", "rest before", ""),
        (
            f"REST, {threads} clients, no authentication (now)",
            "rest",
            f"{ratio('rest', 'rest before'):.1f}x before",
        ),
        (
            f"REST, {threads} clients, with an API key (now)",
            "rest key",
            f"{ratio('rest key', 'rest'):.2f}x without, target >= 0.85x",
        ),
    ]
    width = max(len(label) for label, _, _ in lines) + 1
    for label, name, note in lines:
        figure = median([r[name] for r in rounds])
        print(f"{label + ':':{width}} {figure} searches/s" + (f"; {note}" if note else ""))


if __name__ == "__main__":
    main()
