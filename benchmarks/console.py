"""Server time of console pages with 100,000 items in one project.

    python -m benchmarks.console [--items 100000] [--runs 30] [--backend sqlite|postgres|both]
    python -m benchmarks.console --url sqlite:///filled.db   # a database filled before

Fills project ``default`` with about ``--items`` items (conversations of 50 messages,
memories, context units, state entries and events, with their embeddings from the
word-hashing model), signs in to the console with an admin key, then requests each page
``--runs`` times and prints the median and 90th percentile of its server time: from the
moment the server receives the request to the moment its last byte leaves (measured
around the ASGI app, in process, so no network is counted). Target: the dashboard and a
list of 50 items under 100 ms. The CPU column is the process's CPU time during the
request, the steadier figure on a busy machine.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

import ctxbase
from benchmarks._servers import postgres_url, sqlite_url
from ctxbase.server.app import create_app

BATCH = 500


def fill(store: ctxbase.Store, items: int) -> dict[str, Any]:
    """About ``items`` items in project ``default``: half messages, the rest memories,
    events, context units and state entries."""
    share = items // 10
    conversation = None
    for start in range(0, items // 2, 50):
        conversation = store.conversations.create(title=f"Conversation {start // 50}")
        store.messages.append_many(
            conversation.id,
            [{"role": "user", "content": f"message {start + n} about billing"} for n in range(50)],
        )
    memory = None
    for n in range(2 * share):
        memory = store.memories.add(f"memory {n}: the user prefers plan {n % 7}")
    for start in range(0, share, BATCH):
        store.events.append_many(
            [{"event_type": "tick", "data": {"n": n}} for n in range(start, start + BATCH)]
        )
    for n in range(share // 2):
        store.contexts.add(f"docs/{n}.md", f"document {n}")
    for n in range(share // 2):
        store.state.put(f"key{n}", {"n": n}, namespace=f"agents/{n % 20}")
    assert conversation is not None and memory is not None
    return {"conversation": conversation.id, "memory": memory.id}


class Timed:
    """An ASGI app that records how long each request took inside it: by the wall clock,
    and by the CPU time of this process (every thread: the server's work, which other
    processes on a busy machine do not inflate; requests run one at a time)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[tuple[float, float]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                wall = time.perf_counter() - started
                self.times.append((wall, time.process_time() - started_cpu))


def measure(client: TestClient, timed: Timed, path: str, runs: int) -> tuple[float, float, float]:
    """Median and 90th percentile wall time, and median CPU time, of ``path`` (ms)."""
    for _ in range(3):  # warm up: templates, prepared statements, caches
        assert client.get(path).status_code == 200, path
    timed.times.clear()
    for _ in range(runs):
        assert client.get(path).status_code == 200, path
    wall = sorted(w for w, _ in timed.times)
    cpu = statistics.median(c for _, c in timed.times)
    return statistics.median(wall) * 1000, wall[int(len(wall) * 0.9) - 1] * 1000, cpu * 1000


def bench(url: str, items: int, runs: int, label: str) -> None:
    with ctxbase.open(url, embedder="hash:64", auth="required", embed_worker_interval=0) as store:
        ids = _filled(store)
        if ids is None:
            began = time.perf_counter()
            ids = fill(store, items)
            print(f"{label}: filled in {time.perf_counter() - began:.0f} s")
        key = store.keys.create(role="admin", name="bench").key
        timed = Timed(create_app(store=store))
        with TestClient(timed, base_url="http://localhost") as client:
            sign_in(client, key)
            pages: list[tuple[str, str]] = [
                ("dashboard", "/console/"),
                ("dashboard's health panel", "/console/health"),
                ("50 conversations", "/console/p/default/conversations"),
                ("50 messages", f"/console/p/default/conversations/{ids['conversation']}"),
                ("50 memories", "/console/p/default/memories"),
                ("50 context units", "/console/p/default/contexts"),
                ("50 state entries", "/console/p/default/state"),
                ("memory with history", f"/console/p/default/memories/{ids['memory']}"),
                ("events (last 50)", "/console/p/default/events"),
                ("search, hybrid", "/console/p/default/search?q=billing+plan&mode=hybrid"),
            ]
            print(f"{'page':<26} {'median ms':>10} {'p90 ms':>8} {'cpu ms':>8}")
            for name, path in pages:
                median, p90, cpu = measure(client, timed, path, runs)
                print(f"{name:<26} {median:>10.1f} {p90:>8.1f} {cpu:>8.1f}")


def _filled(store: ctxbase.Store) -> dict[str, Any] | None:
    """The ids the pages need, when the database holds the items of an earlier fill."""
    conversations = store.conversations.list(limit=1).items
    memories = store.memories.list(limit=1).items
    if not conversations or not memories:
        return None
    print(f"reusing {store!r}")
    return {"conversation": conversations[0].id, "memory": memories[0].id}


def sign_in(client: TestClient, key: str) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    answer = client.post(
        "/console/login", data={"csrf_token": token.group(1), "api_key": key, "next": "/console/"}
    )
    assert answer.status_code == 200 and "Dashboard" in answer.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--url", help="a database filled by an earlier run (kept as it is)")
    options = parser.parse_args()
    if options.url:
        bench(options.url, options.items, options.runs, options.url.partition(":")[0])
        return
    targets: list[tuple[str, Callable[[], Any]]] = []
    if options.backend in ("sqlite", "both"):
        targets.append(("SQLite", sqlite_url))
    if options.backend in ("postgres", "both"):
        targets.append(("PostgreSQL", postgres_url))
    for label, make in targets:
        with make() as url:
            bench(url, options.items, options.runs, label)


if __name__ == "__main__":
    main()
