"""Live streams over SSE: resume with Last-Event-ID, per-subscription streams, and events
appended through another process's store reaching a stream (PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ctxbase
from ctxbase.server import create_app
from tests.conftest import open_store
from tests.live import live_server
from tests.postgres import PostgresServer


def _first_events(url: str, path: str, count: int, headers: dict[str, str]) -> list[dict]:
    """The first ``count`` events of an SSE stream, read with plain httpx."""
    events: list[dict] = []
    with httpx.stream("GET", url + path, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                field, _, value = line.partition(": ")
                block[field] = value
                continue
            if block.get("event") == "event":
                events.append({**json.loads(block["data"]), "sse_id": block["id"]})
                if len(events) == count:
                    return events
            block = {}
    return events


@pytest.fixture
def served(store: ctxbase.Store) -> Iterator[tuple[ctxbase.Store, str]]:
    with live_server(create_app(store=store)) as url:
        yield store, url


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_last_event_id_resumes_after_it(served: tuple[ctxbase.Store, str]) -> None:
    store, url = served
    store.events.append_many([{"event_type": f"e{i}"} for i in range(6)])
    path = "/api/v1/projects/default/events/stream?after=1"
    events = _first_events(url, path, 2, {"Last-Event-ID": "4"})
    assert [(e["sse_id"], e["sequence"]) for e in events] == [("5", 5), ("6", 6)]
    assert [e["sequence"] for e in _first_events(url, path, 2, {})] == [2, 3]
    bad = httpx.get(url + path, headers={"Last-Event-ID": "x"}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    missing = httpx.get(url + "/api/v1/projects/nope/events/stream", timeout=10)
    assert missing.status_code == 404


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_subscription_stream_filters_and_acks_on_resume(
    served: tuple[ctxbase.Store, str],
) -> None:
    store, url = served
    sub = store.subscriptions.create(agent_id="ui", delivery="sse", event_types=["ui.*"])
    store.events.append_many(
        [{"event_type": t} for t in ("ui.open", "db.write", "ui.close", "ui.open")]
    )
    path = f"/api/v1/projects/default/subscriptions/{sub.id}/stream"
    assert [e["sequence"] for e in _first_events(url, path, 3, {})] == [1, 3, 4]
    assert store.subscriptions.get(sub.id).cursor == 0  # nothing acknowledged yet
    resumed = _first_events(url, path, 1, {"Last-Event-ID": "3"})
    assert [e["sequence"] for e in resumed] == [4]
    assert store.subscriptions.get(sub.id).cursor == 3
    poll = store.subscriptions.create(agent_id="p")
    refused = httpx.get(f"{url}/api/v1/projects/default/subscriptions/{poll.id}/stream")
    assert refused.status_code == 422


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_client_follows_a_subscription(served: tuple[ctxbase.Store, str]) -> None:
    store, url = served
    sub = store.subscriptions.create(agent_id="ui", delivery="sse", event_types=["ping"])
    got: list[int] = []
    with ctxbase.Client(url) as client:

        def follow() -> None:
            for event in client.subscriptions.stream(sub.id):
                got.append(event.sequence)
                if len(got) == 2:
                    return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        time.sleep(0.2)
        store.events.append("pong")
        store.events.append("ping")
        store.events.append("ping")
        thread.join(timeout=15)
    assert got == [2, 3]


def test_an_append_through_another_process_reaches_the_stream(
    postgres: PostgresServer, postgres_template: str, tmp_path: Path
) -> None:
    """Two stores on one database stand for two server processes: they share nothing but
    PostgreSQL. The serving one polls only every minute, so only NOTIFY can be in time."""
    with postgres.database(template=postgres_template) as database:
        with (
            open_store(database, events_poll_interval=60.0) as serving,
            open_store(database) as other,
            live_server(create_app(store=serving)) as url,
            ctxbase.Client(url) as client,
        ):
            received: list[tuple[int, float]] = []

            def follow() -> None:
                for event in client.events.stream(after=0):
                    received.append((event.sequence, time.monotonic()))
                    if len(received) == 3:
                        return

            thread = threading.Thread(target=follow, daemon=True)
            thread.start()
            time.sleep(0.5)  # the stream is open and waiting
            sent = time.monotonic()
            for i in range(3):
                other.events.append("from-elsewhere", {"i": i})
            thread.join(timeout=20)
            assert [s for s, _ in received] == [1, 2, 3]
            assert received[-1][1] - sent < 10  # far below the 60 s poll
