"""Conversations and messages, the same through every interface and backend."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ctxbase
from ctxbase.errors import InvalidInputError, NotFoundError


def test_create_get_update_delete(api: Any) -> None:
    created = api.conversations.create(
        title="Billing bug",
        agent_id="coder",
        provider="openai",
        model="gpt-4o",
        provider_config={"temperature": 0.2},
        metadata={"ticket": "B-1"},
    )
    assert created.title == "Billing bug"
    assert (created.message_count, created.input_tokens, created.output_tokens) == (0, 0, 0)
    assert api.conversations.get(created.id) == created
    assert api.conversations.get(str(created.id)) == created

    updated = api.conversations.update(created.id, title="Billing drift", health_score=80)
    assert (updated.title, updated.health_score, updated.agent_id) == ("Billing drift", 80, "coder")
    assert updated.updated_at >= created.updated_at

    api.conversations.delete(created.id)
    with pytest.raises(NotFoundError):
        api.conversations.get(created.id)
    with pytest.raises(NotFoundError):
        api.conversations.delete(created.id)


def test_messages_positions_and_token_totals(api: Any) -> None:
    conversation = api.conversations.create(title="t")
    first = api.messages.append(conversation.id, role="user", content="hello", input_tokens=5)
    batch = api.messages.append_many(
        conversation.id,
        [
            {
                "role": "assistant",
                "content": "hi",
                "output_tokens": 7,
                "thinking": "be nice",
                "finish_reason": "stop",
                "metadata": {"latency_ms": 120},
            },
            {"role": "tool", "content": '{"ok": true}', "input_tokens": 1},
        ],
    )
    assert [first.position, *[m.position for m in batch]] == [1, 2, 3]
    assert batch[0].thinking == "be nice" and batch[0].metadata == {"latency_ms": 120}
    totals = api.conversations.get(conversation.id)
    assert (totals.message_count, totals.input_tokens, totals.output_tokens) == (3, 6, 7)
    assert api.messages.get(batch[1].id) == batch[1]

    listed = api.messages.list(conversation.id)
    assert [m.position for m in listed.items] == [1, 2, 3]
    assert listed.next_cursor is None
    assert [m.position for m in api.messages.list(conversation.id, after=1).items] == [2, 3]


def test_message_pagination_walks_everything_once(api: Any) -> None:
    conversation = api.conversations.create()
    api.messages.append_many(
        conversation.id, [{"role": "user", "content": f"m{i}"} for i in range(23)]
    )
    seen, cursor = [], None
    while True:
        page = api.messages.list(conversation.id, limit=5, cursor=cursor)
        seen += [m.position for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(1, 24))


def test_conversation_filters_and_pagination(api: Any) -> None:
    made = [
        api.conversations.create(agent_id="a" if i % 2 else "b", metadata={"n": i, "team": "x"})
        for i in range(7)
    ]
    everything = api.conversations.list(limit=1000).items
    assert [c.id for c in everything] == [c.id for c in reversed(made)]  # newest first
    assert {c.id for c in api.conversations.list(agent_id="a").items} == {
        c.id for c in made if c.agent_id == "a"
    }
    assert [c.id for c in api.conversations.list(metadata={"n": 3}).items] == [made[3].id]
    assert len(api.conversations.list(metadata={"team": "x"}).items) == 7
    assert api.conversations.list(metadata={"team": "y"}).items == []
    future = datetime.now(UTC) + timedelta(hours=1)
    assert api.conversations.list(created_after=future).items == []
    assert len(api.conversations.list(created_before=future).items) == 7
    pages, cursor = [], None
    while True:
        page = api.conversations.list(limit=3, cursor=cursor)
        pages.append([c.id for c in page.items])
        cursor = page.next_cursor
        if not cursor:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [c.id for c in everything]


def test_deleting_a_conversation_deletes_its_messages(api: Any) -> None:
    conversation = api.conversations.create()
    message = api.messages.append(conversation.id, role="user", content="bye")
    api.conversations.delete(conversation.id)
    with pytest.raises(NotFoundError):
        api.messages.get(message.id)


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "robot", "content": "x"},
        {"role": "user"},
        {"role": "user", "content": "x", "input_tokens": -1},
        {"role": "user", "content": "nul \x00 byte"},
        {"role": "user", "content": "x", "metadata": {"f": float("nan")}},
    ],
)
def test_bad_messages_are_rejected_and_nothing_is_written(api: Any, bad: dict) -> None:
    conversation = api.conversations.create()
    good = {"role": "user", "content": "fine"}
    with pytest.raises((InvalidInputError, ValueError)):
        api.messages.append_many(conversation.id, [good, bad])
    assert api.messages.list(conversation.id).items == []
    assert api.conversations.get(conversation.id).message_count == 0


def test_message_pages_after_a_position(api: Any) -> None:
    conversation = api.conversations.create()
    api.messages.append_many(
        conversation.id, [{"role": "user", "content": f"m{i}"} for i in range(4)]
    )
    assert [m.position for m in api.messages.list(conversation.id, after=2).items] == [3, 4]
    assert api.messages.list(conversation.id, after=4).items == []
    assert api.messages.list(conversation.id, after=2**40).items == []  # past any position
    with pytest.raises(InvalidInputError):  # past what SQL integers hold
        api.messages.list(conversation.id, after=2**80)
    with pytest.raises(InvalidInputError):
        api.messages.list(conversation.id, after=-1)
    with pytest.raises(InvalidInputError):
        api.messages.list(conversation.id, cursor="not-a-cursor")
    empty = api.conversations.create()
    assert api.messages.list(empty.id).items == []  # empty, yet it exists
    with pytest.raises(NotFoundError):
        api.messages.list(uuid.uuid4())


def test_unknown_ids_and_projects_are_not_found(api: Any) -> None:
    with pytest.raises(NotFoundError):
        api.conversations.get(uuid.uuid4())
    with pytest.raises(NotFoundError):
        api.messages.append(uuid.uuid4(), role="user", content="x")
    with pytest.raises(NotFoundError):
        api.conversations.create(project="no-such-project")
    with pytest.raises(NotFoundError):
        api.conversations.list(project="no-such-project")


def test_projects_isolate_their_records(api: Any) -> None:
    api.projects.create("other", name="Other")
    mine = api.conversations.create(title="mine")
    theirs = api.conversations.create(title="theirs", project="other")
    with pytest.raises(NotFoundError):
        api.conversations.get(theirs.id)  # default project cannot see it
    assert [c.id for c in api.conversations.list(project="other").items] == [theirs.id]
    assert theirs.id not in {c.id for c in api.conversations.list().items}
    api.messages.append(theirs.id, role="user", content="theirs", project="other")
    with pytest.raises(NotFoundError):
        api.messages.list(theirs.id)  # nor its messages
    assert len(api.messages.list(theirs.id, project="other").items) == 1
    assert api.conversations.get(mine.id).title == "mine"
    api.projects.delete("other")
    with pytest.raises(NotFoundError):
        api.conversations.list(project="other")


def test_concurrent_appends_are_gapless(api: Any) -> None:
    """8 writers x 250 appends -> positions exactly 1..2000, in each writer's order."""
    writers, each = 8, 250
    conversation = api.conversations.create()
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for i in range(each):
                api.messages.append(conversation.id, role="user", content=f"{worker}:{i}")
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    positions = []
    cursor = None
    while True:
        page = api.messages.list(conversation.id, limit=1000, cursor=cursor)
        positions += [m.position for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert positions == list(range(1, writers * each + 1))
    per_writer: dict[str, list[int]] = {}
    for message in api.messages.list(conversation.id, limit=1000).items:
        worker, index = message.content.split(":")
        per_writer.setdefault(worker, []).append(int(index))
    assert all(indexes == sorted(indexes) for indexes in per_writer.values())
    assert api.conversations.get(conversation.id).message_count == writers * each


def test_limits_are_payload_too_large_and_write_nothing(api: Any, store: ctxbase.Store) -> None:
    limit = store.settings.max_content_bytes
    conversation = api.conversations.create()
    with pytest.raises(ctxbase.PayloadTooLargeError):
        api.messages.append(conversation.id, role="user", content="x" * (limit + 1))
    with pytest.raises(ctxbase.PayloadTooLargeError):
        api.conversations.create(metadata={"big": "y" * store.settings.max_metadata_bytes})
    too_many = [{"role": "user", "content": "m"}] * (store.settings.max_batch_size + 1)
    with pytest.raises(ctxbase.PayloadTooLargeError):
        api.messages.append_many(conversation.id, too_many)
    assert api.messages.list(conversation.id).items == []
    assert len(api.conversations.list().items) == 1
