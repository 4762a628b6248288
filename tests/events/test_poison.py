"""One bad stored event stops nothing: not the delivery worker, not lists, streams or export.

The rows are written straight into the table, as a database filled by an older version
(before inputs were checked) may hold them: an event whose metadata is not an object
(unreadable as an event on every backend), and on SQLite a lone surrogate in event data,
state values and memory metadata (SQLite keeps JSON as escaped text, so ``"\\ud800"``
stays stored; PostgreSQL's jsonb refuses it).
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

import ctxbase
from ctxbase.events.worker import DeliveryWorker
from ctxbase.server import create_app
from ctxbase.store.event_writer import events_table
from ctxbase.store.subscriptions import subscriptions_table
from ctxbase.transfer.archive import export_archive
from tests.events.receiver import webhook_receiver
from tests.events.test_live_streams import _first_events
from tests.live import live_server

SECRET = "a-shared-secret-for-tests"
REPLACEMENT = "\ufffd"


def _wait(until: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.02)


def _corrupt(store: ctxbase.Store, event_id: uuid.UUID, **values: object) -> None:
    with store.db.connect(write=True) as connection:
        connection.execute(update(events_table).where(events_table.c.id == event_id).values(values))


def _poison_sqlite_json(store: ctxbase.Store, table: str, column: str, row_id: object) -> None:
    """Store a lone surrogate as an older version did: JSON text with a ``\\ud800`` escape."""
    with store.db.connect(write=True) as connection:
        connection.execute(
            text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
            {"value": '{"text": "bad \\ud800 text"}', "id": str(row_id).replace("-", "")},
        )


def test_an_unreadable_event_is_dead_lettered_and_delivery_goes_on_everywhere(
    fast_store: ctxbase.Store,
) -> None:
    fast_store.projects.create("other")
    with webhook_receiver() as receiver:
        mine = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        theirs = fast_store.subscriptions.create(
            agent_id="b",
            delivery="webhook",
            target=f"{receiver.url}/ok",
            secret=SECRET,
            project="other",
        )
        fast_store.events.append("one")
        bad = fast_store.events.append("two")
        fast_store.events.append("three")
        _corrupt(fast_store, bad.id, metadata=["not", "an", "object"])
        worker = DeliveryWorker(fast_store)
        worker.start()
        try:
            receiver.wait_for(2, str(mine.id))
            fast_store.events.append("elsewhere", project="other")
            receiver.wait_for(1, str(theirs.id))
            # The worker is still alive: a later event is delivered too.
            fast_store.events.append("four")
            receiver.wait_for(3, str(mine.id))
            assert worker._thread is not None and worker._thread.is_alive()
        finally:
            worker.stop()
        assert receiver.accepted(str(mine.id)) == [1, 3, 4]
        letters = fast_store.subscriptions.dead_letters(mine.id).items
        assert [(d.sequence, d.event_id, d.attempts) for d in letters] == [(2, bad.id, 1)]
        assert "ValidationError" in letters[0].last_error
        assert fast_store.subscriptions.get(mine.id).cursor == 4


def test_a_subscription_that_cannot_be_served_is_postponed_alone(
    fast_store: ctxbase.Store,
) -> None:
    with webhook_receiver() as receiver:
        broken, working = (
            fast_store.subscriptions.create(
                agent_id=name, delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
            )
            for name in ("broken", "working")
        )
        with fast_store.db.connect(write=True) as connection:  # a secret no key decrypts
            connection.execute(
                update(subscriptions_table)
                .where(subscriptions_table.c.id == broken.id)
                .values(secret_encrypted=b"not a token")
            )
        fast_store.events.append("one")
        worker = DeliveryWorker(fast_store)
        worker.start()
        try:
            receiver.wait_for(1, str(working.id))
            _wait(lambda: fast_store.subscriptions.get(broken.id).attempts >= 1)
            fast_store.events.append("two")
            receiver.wait_for(2, str(working.id))
            assert worker._thread is not None and worker._thread.is_alive()
        finally:
            worker.stop()
        state = fast_store.subscriptions.get(broken.id)
        assert state.cursor == 0 and "cannot be decrypted" in (state.last_error or "")
        assert state.next_attempt_at is not None
        assert receiver.accepted(str(broken.id)) == []


def _sqlite_only(backend: str) -> None:
    if backend.startswith("postgres"):
        pytest.skip("PostgreSQL's jsonb cannot hold a lone surrogate: nothing to read back")


def test_a_stored_lone_surrogate_is_read_as_a_replacement_character(
    fast_store: ctxbase.Store, backend: str, tmp_path: Path
) -> None:
    _sqlite_only(backend)
    event = fast_store.events.append("note", {"text": "fine"})
    memory = fast_store.memories.add("a memory")
    fast_store.state.put("k", {"text": "fine"}, namespace="ns")
    _poison_sqlite_json(fast_store, "events", "data", event.id)
    _poison_sqlite_json(fast_store, "memories", "metadata", memory.id)
    with fast_store.db.connect(write=True) as connection:
        connection.execute(
            text("UPDATE state_entries SET value = :value"), {"value": '"\\ud800 alone"'}
        )
    expected = {"text": f"bad {REPLACEMENT} text"}
    assert fast_store.events.list().items[0].data == expected
    assert fast_store.memories.list().items[0].metadata == expected
    assert fast_store.state.get("k", namespace="ns").value == f"{REPLACEMENT} alone"

    client = TestClient(create_app(store=fast_store))
    for path in ("events", "memories", "state"):
        response = client.get(f"/api/v1/projects/default/{path}")
        assert response.status_code == 200, (path, response.text)
        assert REPLACEMENT in response.text or "\\ufffd" in response.text

    archive = tmp_path / "export.jsonl.gz"
    export_archive(fast_store.db, archive)
    with gzip.open(archive, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    data = [r["row"]["data"] for r in rows if r.get("table") == "events"]
    assert data == [expected]


def test_the_event_stream_carries_a_stored_lone_surrogate_as_a_replacement_character(
    fast_store: ctxbase.Store, backend: str
) -> None:
    _sqlite_only(backend)
    bad = fast_store.events.append("one", {"text": "fine"})
    fast_store.events.append("two")
    _poison_sqlite_json(fast_store, "events", "data", bad.id)
    with live_server(create_app(store=fast_store)) as url:
        path = "/api/v1/projects/default/events/stream?after=0"
        events = _first_events(url, path, 2, {})
    assert [e["sequence"] for e in events] == [1, 2]
    assert events[0]["data"] == {"text": f"bad {REPLACEMENT} text"}


def test_a_stored_lone_surrogate_does_not_stop_the_delivery_thread(
    fast_store: ctxbase.Store, backend: str
) -> None:
    _sqlite_only(backend)
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        bad = fast_store.events.append("one", {"text": "fine"})
        fast_store.events.append("two")
        _poison_sqlite_json(fast_store, "events", "data", bad.id)
        worker = DeliveryWorker(fast_store)
        worker.start()
        try:
            receiver.wait_for(2, str(sub.id))
        finally:
            worker.stop()
        first = next(d for d in receiver.deliveries if d.sequence == 1)
        assert json.loads(first.body)["data"] == {"text": f"bad {REPLACEMENT} text"}
        assert fast_store.subscriptions.dead_letters(sub.id).items == []
