"""Concurrent vector searches on a 10k-vector SQLite store: library and REST.

    python -m benchmarks.concurrent_search [--vectors 10000] [--threads 8]
        [--searches 400]

Below ``CTXBASE_SQLITE_HNSW_MIN_VECTORS`` an SQLite vector search is an exact numpy
product. Prints searches per second:

- library, one thread; then ``--threads`` threads with BLAS splitting each product over
  every core (as before: ``before``) and with each product on its search's thread
  (``now``);
- REST (``ctxbase serve`` in its own process on loopback, ``--threads`` clients), with
  authentication off (``CTXBASE_AUTH=disabled``) and with an API key.

Targets: concurrent library searches >= 10x the ``before`` rate; REST with a key within
15% of REST without.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def library(store: ctxbase.Store, threads: int, searches: int) -> None:
    def search() -> None:
        assert len(store.search(QUERY["query"], **_library_options()).hits) == 10

    search()  # vectors loaded into memory before the clock starts
    single = rate(1, searches // 4, search)
    with blas_on_every_core():
        before = rate(threads, searches // 4, search)
    now = rate(threads, searches, search)
    print(f"library, 1 thread:                     {single:7.0f} searches/s")
    print(f"library, {threads} threads, BLAS on all cores: {before:7.0f} searches/s (before)")
    print(
        f"library, {threads} threads, own thread:        {now:7.0f} searches/s (now, "
        f"{now / before:.1f}x before, target 10x)"
    )


def _library_options() -> dict[str, Any]:
    return {"kinds": QUERY["kinds"], "mode": QUERY["mode"], **QUERY_OPTIONS}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(url: str, *, auth: str, secret_key: str) -> Iterator[str]:
    """``ctxbase serve`` on a free loopback port until the block ends."""
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
    command = [sys.executable, "-m", "ctxbase", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
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
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    clients = threading.local()

    def search() -> None:
        if not hasattr(clients, "client"):
            clients.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        answer = clients.client.post(
            "/api/v1/projects/default/search", json={**QUERY, **QUERY_OPTIONS}
        )
        answer.raise_for_status()
        assert len(answer.json()["hits"]) == 10

    rate(threads, threads * 2, search)  # warm: connections, the server's vectors
    return rate(threads, searches, search)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--searches", type=int, default=400)
    args = parser.parse_args()
    secret_key = Fernet.generate_key().decode()
    with sqlite_url() as url:
        with ctxbase.open(url, embedder=EMBEDDER, secret_key=secret_key, auth="disabled") as store:
            vectors = search_benchmark.unit_vectors(np.random.default_rng(1), args.vectors)
            search_benchmark.load(store, vectors)
            key = store.keys.create(role="reader", name="benchmark").key
            print(f"{args.vectors} vectors x 384, SQLite exact search, {os.cpu_count()} cores")
            library(store, args.threads, args.searches)
        rates = {}
        for auth, used in (("disabled", None), ("required", key)):
            with server(url, auth=auth, secret_key=secret_key) as base:
                rates[auth] = rest(base, used, args.threads, args.searches)
        print(
            f"REST, {args.threads} clients, no authentication: {rates['disabled']:7.0f} searches/s"
        )
        print(
            f"REST, {args.threads} clients, with an API key:    {rates['required']:7.0f} searches/s"
            f" ({rates['required'] / rates['disabled']:.2f}x, target >= 0.85x)"
        )


if __name__ == "__main__":
    main()
