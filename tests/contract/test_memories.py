"""Memories: history of changes, access counting, expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ctxbase
from ctxbase.errors import InvalidInputError, NotFoundError


def test_add_get_update_history_delete(api: Any) -> None:
    memory = api.memories.add(
        "The user drinks tea",
        user_id="u1",
        agent_id="a1",
        memory_type="fact",
        importance=0.7,
        metadata={"source": "chat"},
        actor="agent:a1",
    )
    assert (memory.access_count, memory.importance, memory.memory_type) == (0, 0.7, "fact")
    read = api.memories.get(memory.id)
    assert read.access_count == 1 and read.last_accessed_at is not None
    assert api.memories.get(memory.id).access_count == 2

    updated = api.memories.update(
        memory.id, content="The user drinks espresso", importance=0.9, actor="agent:a2"
    )
    assert (updated.content, updated.importance) == ("The user drinks espresso", 0.9)
    assert api.memories.update(memory.id, importance=0.9).updated_at == updated.updated_at  # no-op

    history = api.memories.history(memory.id)
    assert [h.action for h in history] == ["add", "update"]
    assert history[0].new_value["content"] == "The user drinks tea"
    assert history[0].actor == "agent:a1"
    assert history[1].old_value == {"content": "The user drinks tea", "importance": 0.7}
    assert history[1].new_value == {"content": "The user drinks espresso", "importance": 0.9}
    assert history[1].actor == "agent:a2"

    api.memories.delete(memory.id)
    with pytest.raises(NotFoundError):
        api.memories.get(memory.id)
    with pytest.raises(NotFoundError):
        api.memories.history(memory.id)


def test_list_filters_and_does_not_count_access(api: Any) -> None:
    a = api.memories.add("a", user_id="u1", memory_type="fact")
    b = api.memories.add("b", user_id="u2", memory_type="episodic")
    assert [m.id for m in api.memories.list().items] == [b.id, a.id]
    assert [m.id for m in api.memories.list(user_id="u1").items] == [a.id]
    assert [m.id for m in api.memories.list(memory_type="episodic").items] == [b.id]
    assert all(m.access_count == 0 for m in api.memories.list().items)


def test_expired_memories_are_never_returned_and_pruned(api: Any, store: ctxbase.Store) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = api.memories.add("old news", expires_at=past)
    short = api.memories.add("short lived", ttl_seconds=1)
    kept = api.memories.add("forever")
    with pytest.raises(NotFoundError):
        api.memories.get(expired.id)
    assert short.expires_at is not None
    time.sleep(1.1)
    assert [m.id for m in api.memories.list().items] == [kept.id]
    assert api.memories.prune() == 2
    assert api.memories.prune() == 0
    assert api.memories.get(kept.id).content == "forever"


def test_an_expiry_is_cleared_and_the_change_recorded(api: Any) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    memory = api.memories.add("a passing thought", expires_at=soon)
    cleared = api.memories.update(memory.id, clear_expiry=True, actor="agent:keeper")
    assert cleared.expires_at is None
    assert api.memories.get(memory.id).expires_at is None
    change = api.memories.history(memory.id)[-1]
    assert change.action == "update" and change.actor == "agent:keeper"
    assert change.new_value == {"expires_at": None}
    assert abs(datetime.fromisoformat(change.old_value["expires_at"]) - soon) < timedelta(seconds=1)
    # Clearing what is already clear changes nothing and records nothing.
    assert api.memories.update(memory.id, clear_expiry=True).expires_at is None
    assert len(api.memories.history(memory.id)) == 2
    # An expiry can be set again afterwards, and cleared with other fields at once.
    api.memories.update(memory.id, expires_at=soon)
    both = api.memories.update(memory.id, importance=0.9, clear_expiry=True)
    assert (both.importance, both.expires_at) == (0.9, None)
    assert api.memories.history(memory.id)[-1].new_value == {"importance": 0.9, "expires_at": None}
    if isinstance(api, ctxbase.Store):  # the asyncio facade takes it as the Store does
        api.memories.update(memory.id, expires_at=soon)
        facade = ctxbase.AsyncStore(api)
        done = asyncio.run(facade.memories.update(memory.id, clear_expiry=True))
        assert done.expires_at is None


def test_an_expiry_given_and_cleared_at_once_is_refused(api: Any) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    memory = api.memories.add("keep me", expires_at=soon)
    with pytest.raises(InvalidInputError) as refused:
        api.memories.update(memory.id, expires_at=soon, clear_expiry=True, content="changed")
    assert "expires_at" in str(refused.value) and "clear_expiry" in str(refused.value)
    kept = api.memories.get(memory.id)
    assert kept.content == "keep me" and kept.expires_at is not None
    assert len(api.memories.history(memory.id)) == 1


def test_memory_linked_to_conversation(api: Any) -> None:
    conversation = api.conversations.create()
    message = api.messages.append(conversation.id, role="user", content="I love tea")
    memory = api.memories.add(
        "loves tea", conversation_id=conversation.id, first_message_id=message.id
    )
    assert [m.id for m in api.memories.list(conversation_id=conversation.id).items] == [memory.id]
    api.conversations.delete(conversation.id)
    kept = api.memories.get(memory.id)
    assert (kept.conversation_id, kept.first_message_id) == (None, None)


def test_bad_memory_input(api: Any) -> None:
    for bad in (
        {"importance": 1.5},
        {"importance": -0.1},
        {"ttl_seconds": 0},
        {"conversation_id": uuid.uuid4()},
    ):
        with pytest.raises(InvalidInputError):
            api.memories.add("x", **bad)
    with pytest.raises(InvalidInputError):
        api.memories.add("")
    assert api.memories.list().items == []
