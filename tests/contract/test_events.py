"""Event streams and subscriptions through every interface: Store and Client, both backends."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ctxbase.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from tests.conftest import run_in_threads


def test_append_read_and_page(api: Any) -> None:
    first = api.events.append("schema.changed", {"path": "/users"}, metadata={"by": "api"})
    assert (first.sequence, first.event_type, first.data, first.metadata) == (
        1,
        "schema.changed",
        {"path": "/users"},
        {"by": "api"},
    )
    batch = api.events.append_many([{"event_type": f"step.{i}", "data": i} for i in range(5)])
    assert [e.sequence for e in batch] == [2, 3, 4, 5, 6]
    assert api.events.last_sequence() == 6
    page = api.events.list(after=1, limit=3)
    assert [e.sequence for e in page.items] == [2, 3, 4]
    assert (page.next_after, page.last_sequence) == (4, 6)
    rest = api.events.list(after=page.next_after, limit=3)
    assert [e.sequence for e in rest.items] == [5, 6]
    assert rest.next_after is None
    assert rest.items[-1].data == 4
    assert api.events.list(after=6).items == []


def test_expected_sequence_conflict_writes_nothing(api: Any) -> None:
    api.events.append("a", expected_sequence=0)
    api.events.append_many([{"event_type": "b"}, {"event_type": "c"}], expected_sequence=1)
    with pytest.raises(ConflictError) as caught:
        api.events.append("d", expected_sequence=1)
    assert caught.value.details["last_sequence"] == 3
    assert api.events.last_sequence() == 3
    assert api.events.append("d", expected_sequence=3).sequence == 4


def test_bad_events_write_nothing(api: Any) -> None:
    for bad in (
        [{"event_type": ""}],
        [{"event_type": "x" * 201}],
        [{"event_type": "nul\x00"}],
        [{"event_type": "t", "data": float("nan")}],
        [{"event_type": "t", "metadata": "not an object"}],
        [{"event_type": "ok"}, {"data": 1}],
        [],
    ):
        with pytest.raises(InvalidInputError):
            api.events.append_many(bad)
    with pytest.raises(PayloadTooLargeError):
        api.events.append("big", {"blob": "x" * 70_000})
    with pytest.raises(InvalidInputError):
        api.events.append("t", expected_sequence=-1)
    with pytest.raises(NotFoundError):
        api.events.append("t", project="nope")
    with pytest.raises(NotFoundError):
        api.events.list(project="nope")
    assert api.events.last_sequence() == 0


def test_streams_are_per_project(api: Any) -> None:
    api.projects.create("other")
    api.events.append("a")
    api.events.append("b")
    assert api.events.append("x", project="other").sequence == 1
    assert [e.event_type for e in api.events.list(project="other").items] == ["x"]


def test_stream_replays_then_follows(api: Any) -> None:
    api.events.append_many([{"event_type": f"old.{i}"} for i in range(3)])
    received: list[int] = []
    done = threading.Event()

    def follow() -> None:
        for event in api.events.stream(after=1):
            received.append(event.sequence)
            if event.sequence == 5:
                done.set()
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    api.events.append("new.4")
    api.events.append("new.5")
    assert done.wait(15), received
    assert received == [2, 3, 4, 5]


def test_subscription_poll_pending_and_ack(api: Any) -> None:
    api.events.append("before")  # before the subscription: not owed
    sub = api.subscriptions.create(agent_id="ops", event_types=["deploy.*", "alert"])
    assert (sub.cursor, sub.delivery, sub.has_secret) == (1, "poll", False)
    api.events.append("deploy.started", {"service": "api"})
    api.events.append("chat", {"text": "hello"})
    api.events.append("alert", {"level": "high"})
    api.events.append("deploy.done")
    pending = api.subscriptions.pending(sub.id, limit=2)
    assert [e.sequence for e in pending.items] == [2, 4]
    assert (pending.cursor, pending.scanned_to, pending.last_sequence) == (1, 4, 5)
    acked = api.subscriptions.ack(sub.id, pending.scanned_to)
    assert acked.cursor == 4
    assert [e.event_type for e in api.subscriptions.pending(sub.id).items] == ["deploy.done"]
    with pytest.raises(InvalidInputError):
        api.subscriptions.ack(sub.id, 99)  # beyond the stream
    assert api.subscriptions.ack(sub.id, 2).cursor == 4  # never backwards
    everything = api.subscriptions.create(agent_id="audit", start_after=0)
    assert len(api.subscriptions.pending(everything.id).items) == 5


def test_subscription_crud_and_validation(api: Any) -> None:
    hook = api.subscriptions.create(
        agent_id="frontend",
        needs=["changes to the API schema"],
        delivery="webhook",
        target="http://127.0.0.1:9/hook",
        secret="a-secret-of-enough-length",
    )
    assert hook.has_secret and hook.needs == ["changes to the API schema"]
    assert "secret" not in hook.model_dump()
    api.subscriptions.create(agent_id="backend", delivery="redis", target="ctxbase:backend")
    assert api.subscriptions.get(hook.id) == hook
    assert {s.agent_id for s in api.subscriptions.list().items} == {"frontend", "backend"}
    assert [s.id for s in api.subscriptions.list(agent_id="frontend").items] == [hook.id]
    page = api.subscriptions.list(limit=1)
    assert len(page.items) == 1 and page.next_cursor
    for bad in (
        {"agent_id": "x", "delivery": "webhook", "target": "ftp://x", "secret": "s" * 20},
        {"agent_id": "x", "delivery": "webhook", "target": "http://x"},  # unsigned
        {"agent_id": "x", "delivery": "webhook", "target": "http://x", "secret": "short"},
        {"agent_id": "x", "delivery": "redis"},
        {"agent_id": "x", "delivery": "poll", "target": "http://x"},
        {"agent_id": "x", "delivery": "carrier-pigeon"},
        {"agent_id": ""},
        {"agent_id": "x", "threshold": 2},
        {"agent_id": "x", "start_after": 5},  # beyond the stream
    ):
        with pytest.raises(InvalidInputError):
            api.subscriptions.create(**bad)
    assert len(api.subscriptions.list().items) == 2
    api.subscriptions.delete(hook.id)
    with pytest.raises(NotFoundError):
        api.subscriptions.get(hook.id)
    with pytest.raises((NotFoundError, InvalidInputError)):  # HTTP: a malformed path, 422
        api.subscriptions.pending("not-a-uuid")
    with pytest.raises(NotFoundError):
        api.subscriptions.list(project="nope")
    assert api.subscriptions.dead_letters(api.subscriptions.list().items[0].id).items == []


def test_subscription_in_another_project_is_not_found(api: Any) -> None:
    api.projects.create("other")
    sub = api.subscriptions.create(agent_id="a", project="other")
    with pytest.raises(NotFoundError):
        api.subscriptions.get(sub.id)
    with pytest.raises(NotFoundError):
        api.subscriptions.ack(sub.id, 0)


def test_events_show_their_tenant(api: Any) -> None:
    tenant = api.tenants.get("default").id
    appended = api.events.append("schema.changed", {"summary": "x"})
    batch = api.events.append_many([{"event_type": "a"}, {"event_type": "b"}])
    assert appended.tenant_id == tenant and {e.tenant_id for e in batch} == {tenant}
    assert {e.tenant_id for e in api.events.list().items} == {tenant}


def test_registering_an_agent_again_replaces_its_subscription(api: Any) -> None:
    first = api.subscriptions.create(agent_id="frontend", event_types=["deploy.*"])
    assert (first.name, first.cursor) == ("", 0)
    for i in range(3):
        api.events.append(f"deploy.step{i}")
    api.subscriptions.ack(first.id, 2)
    again = api.subscriptions.create(
        agent_id="frontend", needs=["changes to the API schema"], delivery="sse"
    )
    # Same subscription, new filter and delivery, cursor kept: event 3 is still owed.
    assert again.id == first.id and again.created_at == first.created_at
    assert (again.needs, again.event_types, again.delivery) == (
        ["changes to the API schema"],
        [],
        "sse",
    )
    assert again.cursor == 2 and again.updated_at > first.updated_at
    assert [s.id for s in api.subscriptions.list(agent_id="frontend").items] == [first.id]
    # start_after moves the cursor on purpose; another name is another subscription.
    assert api.subscriptions.create(agent_id="frontend", start_after=0).cursor == 0
    named = api.subscriptions.create(agent_id="frontend", name="alerts", event_types=["alert"])
    assert named.id != first.id and (named.name, named.cursor) == ("alerts", 3)
    listed = {(s.name, s.id) for s in api.subscriptions.list(agent_id="frontend").items}
    assert listed == {("", first.id), ("alerts", named.id)}
    # A replacement that fails validation changes nothing.
    with pytest.raises(InvalidInputError):
        api.subscriptions.create(agent_id="frontend", delivery="webhook", target="http://x")
    assert api.subscriptions.get(first.id).delivery == "poll"
    # Other projects and agents keep their own.
    api.projects.create("other")
    elsewhere = api.subscriptions.create(agent_id="frontend", project="other")
    assert elsewhere.id != first.id


def test_concurrent_registrations_make_one_subscription(api: Any) -> None:
    made: list[Any] = []
    errors = run_in_threads(
        lambda: made.append(api.subscriptions.create(agent_id="racer", event_types=["x"])), 8
    )
    assert errors == [] and len(made) == 8
    assert {s.id for s in made} == {s.id for s in api.subscriptions.list().items}
    assert len({s.id for s in made}) == 1
