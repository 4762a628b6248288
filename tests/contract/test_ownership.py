"""Memories and state entries a conversation owns go with it; those that only came from
it stay. Deleting a conversation leaves nothing of what it owned: no row, no vector, no
full-text entry, no history, and no search finds any of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, or_, select, text

import ctxbase
from ctxbase.db.schema import (
    Embedding,
    MemoryChange,
    Message,
    MessageChange,
    StateEntry,
    table,
)
from ctxbase.db.schema import Memory as MemoryRow
from ctxbase.errors import CtxbaseError, InvalidInputError, NotFoundError
from ctxbase.store.base import Scope

#: Words only the doomed conversation's records contain.
DOOMED = "zanzibar quasar"


@dataclass
class Doomed:
    """A conversation with messages (one edited), owned state and memories (one edited),
    and memories that only came from it."""

    chat: Any
    messages: list[Any]
    owned_memory: Any
    owned_and_from: Any
    came_from: Any
    from_message: Any
    entry: Any
    kept_entry: Any


def _doomed(api: Any) -> Doomed:
    chat = api.conversations.create(title="doomed")
    messages = api.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": f"{DOOMED} message one"},
            {"role": "assistant", "content": f"{DOOMED} message two"},
        ],
    )
    api.messages.update(messages[0].id, content=f"{DOOMED} message one, edited")
    owned = api.memories.add(f"{DOOMED} owned memory", owner_conversation_id=chat.id)
    api.memories.update(owned.id, content=f"{DOOMED} owned memory, edited", actor="t")
    both = api.memories.add(
        f"{DOOMED} owned memory that came from it",
        conversation_id=chat.id,
        owner_conversation_id=chat.id,
    )
    came_from = api.memories.add("the user prefers tabs", conversation_id=chat.id)
    from_message = api.memories.add(
        "the user prefers spaces", conversation_id=chat.id, first_message_id=messages[1].id
    )
    entry = api.state.put("step", {"n": 3}, namespace="run", owner_conversation_id=chat.id)
    kept = api.state.put("budget", 10, namespace="run")
    return Doomed(chat, messages, owned, both, came_from, from_message, entry, kept)


def _counts(store: ctxbase.Store, doomed: Doomed) -> dict[str, int]:
    """Rows left anywhere of what ``doomed`` owned."""
    message_ids = [m.id for m in doomed.messages]
    memory_ids = [doomed.owned_memory.id, doomed.owned_and_from.id]
    embeddings, states = table(Embedding), table(StateEntry)
    queries = {
        "messages": select(func.count()).where(table(Message).c.id.in_(message_ids)),
        "message_changes": select(func.count()).where(
            table(MessageChange).c.message_id.in_(message_ids)
        ),
        "memories": select(func.count()).where(table(MemoryRow).c.id.in_(memory_ids)),
        "memory_changes": select(func.count()).where(
            table(MemoryChange).c.memory_id.in_(memory_ids)
        ),
        "embeddings": select(func.count()).where(
            or_(embeddings.c.message_id.in_(message_ids), embeddings.c.memory_id.in_(memory_ids))
        ),
        "state_entries": select(func.count()).where(
            states.c.owner_conversation_id == doomed.chat.id
        ),
    }
    with store.db.connect() as connection:
        counts = {name: connection.execute(q).scalar_one() for name, q in queries.items()}
        if store.backend == "sqlite":  # the FTS5 indexes themselves, not only the join
            for fts in ("messages_fts", "memories_fts"):
                counts[fts] = connection.execute(
                    text(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH 'zanzibar'")
                ).scalar_one()
    return counts


def test_deleting_a_conversation_deletes_what_it_owns(api: Any, store: ctxbase.Store) -> None:
    doomed = _doomed(api)
    survivor = api.conversations.create(title="survivor")
    kept_message = api.messages.append(survivor.id, role="user", content="survivor message")
    kept_memory = api.memories.add("survivor memory", owner_conversation_id=survivor.id)
    assert 0 not in _counts(store, doomed).values()

    api.conversations.delete(doomed.chat.id)

    assert set(_counts(store, doomed).values()) == {0}
    for message in doomed.messages:
        with pytest.raises(NotFoundError):
            api.messages.get(message.id)
    for memory in (doomed.owned_memory, doomed.owned_and_from):
        with pytest.raises(NotFoundError):
            api.memories.get(memory.id)
    with pytest.raises(NotFoundError):
        api.state.get("step", namespace="run")
    assert api.state.get("budget", namespace="run").version == 1
    gone = {m.id for m in doomed.messages} | {doomed.owned_memory.id, doomed.owned_and_from.id}
    for mode in ("text", "vector"):
        assert api.search(DOOMED, mode=mode).hits == [], mode
    for mode in ("text", "vector", "hybrid"):
        hits = {hit.id for hit in api.search(DOOMED, mode=mode, threshold=-1, k=50).hits}
        assert not hits & gone, mode
    assert api.messages.get(kept_message.id).content == "survivor message"
    assert api.memories.get(kept_memory.id).owner_conversation_id == survivor.id


def test_a_memory_that_only_came_from_a_conversation_outlives_it(api: Any) -> None:
    doomed = _doomed(api)
    api.conversations.delete(doomed.chat.id)
    for memory in (doomed.came_from, doomed.from_message):
        kept = api.memories.get(memory.id)
        assert (kept.content, kept.conversation_id) == (memory.content, None)
        assert (kept.first_message_id, kept.owner_conversation_id) == (None, None)
        assert api.memories.history(memory.id)[0].action == "add"
    assert api.search("prefers tabs", kinds=["memory"], mode="text").hits[0].id == (
        doomed.came_from.id
    )


def test_owned_records_are_listed_by_owner(api: Any) -> None:
    doomed = _doomed(api)
    other = api.conversations.create()
    api.memories.add("theirs", owner_conversation_id=other.id)
    api.state.put("theirs", 1, owner_conversation_id=other.id)
    owned = api.memories.list(owner_conversation_id=doomed.chat.id).items
    assert {m.id for m in owned} == {doomed.owned_memory.id, doomed.owned_and_from.id}
    came = api.memories.list(conversation_id=doomed.chat.id).items
    assert {m.id for m in came} == {
        doomed.owned_and_from.id,
        doomed.came_from.id,
        doomed.from_message.id,
    }
    assert all(m.owner_conversation_id == doomed.chat.id for m in owned)
    (entry,) = api.state.list(owner_conversation_id=doomed.chat.id).items
    assert (entry.key, entry.owner_conversation_id) == ("step", doomed.chat.id)
    assert len(api.state.list().items) == 3
    assert api.state.list(owner_conversation_id=uuid.uuid4()).items == []


def test_a_state_write_sets_its_owner_like_its_value(api: Any) -> None:
    chat = api.conversations.create()
    first = api.state.put("plan", "a", owner_conversation_id=chat.id)
    assert first.owner_conversation_id == chat.id
    cas = api.state.put("plan", "b", expected_version=1, owner_conversation_id=chat.id)
    assert (cas.version, cas.owner_conversation_id) == (2, chat.id)
    with pytest.raises(ctxbase.VersionConflictError):
        api.state.put("plan", "c", expected_version=1, owner_conversation_id=chat.id)
    disowned = api.state.put("plan", "c", expected_version=2)  # no owner: unowned now
    assert (disowned.version, disowned.owner_conversation_id) == (3, None)
    api.conversations.delete(chat.id)
    assert api.state.get("plan").value == "c"

    later = api.conversations.create()
    created = api.state.put("lock", "me", expected_version=0, owner_conversation_id=later.id)
    assert created.owner_conversation_id == later.id
    api.conversations.delete(later.id)
    with pytest.raises(NotFoundError):
        api.state.get("lock")
    assert api.state.put("lock", "again", expected_version=0).version == 1  # as after delete


@pytest.mark.parametrize("kind", ["memory", "state"])
def test_an_owner_of_another_project_reads_as_one_that_does_not_exist(api: Any, kind: str) -> None:
    api.projects.create("elsewhere")
    foreign = api.conversations.create(project="elsewhere")

    def write(owner: Any) -> dict[str, Any]:
        with pytest.raises(InvalidInputError) as refused:
            if kind == "memory":
                api.memories.add("fact", owner_conversation_id=owner)
            else:
                api.state.put("key", 1, owner_conversation_id=owner)
        return refused.value.to_dict()

    random = write(uuid.uuid4())
    assert "owner_conversation_id" in random["error"]["message"]
    assert write(foreign.id) == random
    assert api.memories.list().items == [] and api.state.list().items == []


def test_another_tenants_conversation_cannot_own_anything(store: ctxbase.Store) -> None:
    store.tenants.create("globex")
    globex = store.scoped(Scope(tenant="globex", server_admin=False))
    globex.projects.create("bravo")
    theirs = globex.conversations.create(project="bravo")
    answers = []
    for owner in (theirs.id, uuid.uuid4()):
        for write in (
            lambda o: store.memories.add("fact", owner_conversation_id=o),
            lambda o: store.state.put("key", 1, owner_conversation_id=o),
        ):
            with pytest.raises(CtxbaseError) as refused:
                write(owner)
            answers.append((refused.value.http_status, refused.value.to_dict()))
    assert answers[:2] == answers[2:] and answers[0][0] == 422
    globex.conversations.delete(theirs.id, project="bravo")  # their deletion cannot reach into ours
    assert store.memories.list().items == [] and store.state.list().items == []
