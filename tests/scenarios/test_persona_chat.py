"""The persona chat engine (reference system 004) moves in.

Its guide manages a pooled PostgreSQL connection with a health check, numbered
migrations, personas and their modules, conversations whose messages carry thinking and
token counts, per-module conversation state, and an episodic memory with importance,
access counts and decay; deleting a conversation deletes its messages, states and
memories. Each step here is ctxbase's public API doing the same, on an SQLite file and on
PostgreSQL.

Its tables map onto ctxbase's records as follows:

- ``personas`` → context units of ``source_type="persona"``: the ``template`` is the
  content, the persona's name the unit's name; ``description``, ``mode``,
  ``loop_frequency``, ``first_message``, ``image_path``, ``is_active`` go in its
  metadata. Editing a persona makes a new version under the same name.
- ``modules`` → context units of ``source_type="module"`` (content may be empty, as after
  the guide's migration 004); ``type``, ``trigger_pattern``, ``script``,
  ``execution_context``, ``requires_ai_inference``, ``stage_priority``, ``is_active`` in
  metadata.
- ``conversations`` → conversations: ``persona_id`` is ``agent_id`` (the persona's name),
  ``provider_type`` is ``provider``, ``provider_config`` as it is.
- ``messages`` → messages: ``thinking``, ``input_tokens``, ``output_tokens`` as they are,
  ``extra_data`` is ``metadata``; ``updated_at`` moves when a message is edited.
- ``conversation_states`` → state entries owned by the conversation, namespace
  ``conversations/{conversation}/personas/{persona}/modules/{module}``, key
  ``state_key``, value ``state_value``: the guide's unique (conversation, persona,
  module, key) is the entry's identity.
- ``conversation_memory`` → memories owned by the conversation (``owner_conversation_id``:
  deleted with it) and linked to it (``conversation_id``); ``persona_id`` is
  ``agent_id``; ``first_message_id``, ``content``, ``memory_type``, ``importance``,
  ``metadata``, ``access_count`` as they are, ``last_accessed`` is ``last_accessed_at``;
  the embedding is the memory's stored vector.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import ctxbase
from ctxbase.db import migrate
from ctxbase.errors import InvalidInputError, NotFoundError, VersionConflictError
from tests.conftest import open_store
from tests.scenarios.conftest import ok, serve

TEMPLATE = "You are Motoko, a calm and precise cyborg investigator. Answer briefly."


def state_namespace(conversation_id: object, persona: str, module: str) -> str:
    return f"conversations/{conversation_id}/personas/{persona}/modules/{module}"


def personas_and_modules(api: Any) -> dict[str, Any]:
    motoko = api.contexts.add(
        "motoko",
        TEMPLATE,
        source_type="persona",
        metadata={
            "description": "Section 9 investigator",
            "mode": "chat",
            "loop_frequency": "never",
            "first_message": "Section 9. What do you need?",
            "image_path": "/img/motoko.png",
            "is_active": True,
        },
    )
    mood = api.contexts.add(
        "mood-tracker",
        "Track the user's mood across turns.",
        source_type="module",
        metadata={
            "type": "advanced",
            "trigger_pattern": "feel|mood",
            "execution_context": "POST_RESPONSE",
            "requires_ai_inference": True,
            "stage_priority": 50,
            "is_active": True,
        },
    )
    script_only = api.contexts.add(  # migration 004: module content may be empty
        "dice",
        "",
        source_type="module",
        metadata={"type": "advanced", "script": "roll(2, 6)", "execution_context": "ON_DEMAND"},
    )
    return {"persona": motoko, "modules": [mood, script_only]}


def chat_session(api: Any, persona: str = "motoko") -> dict[str, Any]:
    """A conversation with a persona: messages, module state and episodic memories."""
    chat = api.conversations.create(
        title="Night shift",
        agent_id=persona,
        provider="anthropic",
        provider_config={"model": "claude-sonnet-4", "temperature": 0.4},
    )
    greeting, question, answer = api.messages.append_many(
        chat.id,
        [
            {"role": "assistant", "content": "Section 9. What do you need?"},
            {
                "role": "user",
                "content": "I feel uneasy about the Puppet Master case.",
                "input_tokens": 14,
            },
            {
                "role": "assistant",
                "content": "Unease is data. Tell me what you saw.",
                "thinking": "The user is anxious; stay calm and ask for facts.",
                "metadata": {"stage": "IMMEDIATE", "modules": ["mood-tracker"]},
                "output_tokens": 11,
            },
        ],
    )
    mood = api.state.put(
        "mood",
        {"label": "uneasy", "score": -0.4},
        namespace=state_namespace(chat.id, persona, "mood-tracker"),
        owner_conversation_id=chat.id,
    )
    rolls = api.state.put(
        "last_roll",
        [3, 5],
        namespace=state_namespace(chat.id, persona, "dice"),
        owner_conversation_id=chat.id,
    )
    episode = api.memories.add(
        "The user feels uneasy about the Puppet Master case.",
        agent_id=persona,
        conversation_id=chat.id,
        owner_conversation_id=chat.id,
        first_message_id=question.id,
        memory_type="episodic",
        importance=0.8,
        metadata={"emotion": "unease"},
    )
    trivia = api.memories.add(
        "The user mentioned it is raining.",
        agent_id=persona,
        conversation_id=chat.id,
        owner_conversation_id=chat.id,
        memory_type="episodic",
    )
    return {
        "chat": chat,
        "messages": [greeting, question, answer],
        "state": [mood, rolls],
        "memories": [episode, trivia],
    }


# --- connection.py: DatabaseManager -----------------------------------------------------


def test_database_manager_pool_and_health_check(database_url: str, backend: str) -> None:
    """``initialize()``, ``get_session()``, ``test_connection()`` and ``close()`` with the
    guide's pool (10 + 20 overflow, pre-ping, recycled every 5 minutes)."""
    store = open_store(
        database_url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=300
    )
    try:
        status = store.check_connection()  # test_connection()
        assert status.status == "ok" and status.server_version
        if backend == "postgres":
            assert status.backend == "postgresql" and status.server_version[0].isdigit()
            assert status.database and status.database.startswith("ctxbase_test_")
        else:
            assert status.server_version.startswith("SQLite")
        assert status.schema_revision == migrate.head_revision()
        # "too many connections": a smaller pool is a setting like any other.
        with open_store(database_url, pool_size=5, max_overflow=10) as small:
            assert small.check_connection().status == "ok"
        with serve(store) as server:  # the FastAPI dependency: a session per request
            health = httpx.get(f"{server.url}/api/v1/health").json()
            assert health["status"] in ("ok", "degraded") and health["database"]["status"] == "ok"
            with server.client() as client:
                for _ in range(40):  # more requests than the pool holds connections
                    client.conversations.list()
    finally:
        store.close()  # close(): cleanup


def test_numbered_migrations_on_a_test_database(database_url: str) -> None:
    """ "Test Database": create it and run every migration; applying them again is no
    error ("Migration already applied"), and the history lists them in order."""
    ok("db", "upgrade", "-d", database_url)
    head = migrate.head_revision()
    assert f"{head} (up to date)" in ok("db", "current", "-d", database_url)
    ok("db", "upgrade", "-d", database_url)
    history = ok("db", "history")
    numbers = [r.revision for r in migrate.history()]
    positions = [history.index(n) for n in numbers]
    assert positions == sorted(positions) or positions == sorted(positions, reverse=True)
    with open_store(database_url, auto_migrate=False) as store:
        personas_and_modules(store)
        assert len(store.contexts.list(source_type="module").items) == 2


# --- Schema: personas, modules, conversations, messages ---------------------------------


def test_personas_modules_conversations_and_messages(store: ctxbase.Store) -> None:
    found = personas_and_modules(store)
    persona = store.contexts.get_latest("motoko")
    assert persona.content == TEMPLATE and persona.metadata["mode"] == "chat"
    edited = store.contexts.update(
        persona.id,
        content=TEMPLATE + " Never break character.",
        metadata={**persona.metadata, "is_active": False},
    )
    assert edited.version == 2 and store.contexts.get_latest("motoko").id == edited.id
    modules = store.contexts.list(source_type="module").items
    assert sorted(m.name for m in modules) == ["dice", "mood-tracker"]
    dice = next(m for m in modules if m.name == "dice")
    assert dice.content == "" and dice.metadata["script"] == "roll(2, 6)"
    assert found["modules"][0].metadata["stage_priority"] == 50

    session = chat_session(store)
    chat = store.conversations.get(session["chat"].id)
    assert (chat.title, chat.agent_id, chat.provider) == ("Night shift", "motoko", "anthropic")
    assert chat.provider_config == {"model": "claude-sonnet-4", "temperature": 0.4}
    assert (chat.input_tokens, chat.output_tokens) == (14, 11)
    assert [c.id for c in store.conversations.list(agent_id="motoko").items] == [chat.id]

    greeting, question, answer = store.messages.list(chat.id).items
    assert answer.thinking == "The user is anxious; stay calm and ask for facts."
    assert answer.metadata == {"stage": "IMMEDIATE", "modules": ["mood-tracker"]}
    assert (question.input_tokens, answer.output_tokens) == (14, 11)
    assert all(isinstance(m.id, type(chat.id)) for m in (greeting, question, answer))  # UUIDs

    # updated_at: a message is edited in place (a post-response module rewrites it)
    revised = store.messages.update(
        answer.id,
        content="Unease is data. Tell me exactly what you saw.",
        metadata={**answer.metadata, "revised": True},
        actor="module:mood-tracker",
    )
    assert revised.position == answer.position and revised.updated_at > answer.updated_at
    (change,) = store.messages.history(answer.id)
    assert change.actor == "module:mood-tracker"
    assert store.search("exactly what you saw", kinds=["message"], mode="text").hits[0].id == (
        answer.id
    )


# --- conversation_states ------------------------------------------------------------------


def test_conversation_state_per_persona_and_module(store: ctxbase.Store) -> None:
    personas_and_modules(store)
    session = chat_session(store)
    chat = session["chat"]
    namespace = state_namespace(chat.id, "motoko", "mood-tracker")
    entry = store.state.get("mood", namespace=namespace)
    assert entry.value == {"label": "uneasy", "score": -0.4} and entry.version == 1
    assert entry.owner_conversation_id == chat.id

    # UNIQUE(conversation, persona, module, key): writing again updates the one entry.
    calmer = store.state.put(
        "mood",
        {"label": "calmer", "score": 0.1},
        namespace=namespace,
        expected_version=1,
        owner_conversation_id=chat.id,
    )
    assert calmer.version == 2
    with pytest.raises(VersionConflictError):  # two modules racing: the loser is told
        store.state.put(
            "mood",
            {"label": "stale"},
            namespace=namespace,
            expected_version=1,
            owner_conversation_id=chat.id,
        )
    everything = store.state.list(namespace=f"conversations/{chat.id}").items
    assert sorted(e.key for e in everything) == ["last_roll", "mood"]
    assert len(store.state.list(owner_conversation_id=chat.id).items) == 2
    # Another conversation's state of the same persona and module is its own.
    other = chat_session(store)["chat"]
    assert (
        store.state.get(
            "mood", namespace=state_namespace(other.id, "motoko", "mood-tracker")
        ).version
        == 1
    )
    with pytest.raises(InvalidInputError):  # the owner must be a conversation of the project
        store.state.put("x", 1, namespace="n", owner_conversation_id=ctxbase_id())


def ctxbase_id() -> str:
    return "01900000-0000-7000-8000-000000000001"


# --- conversation_memory ----------------------------------------------------------------


def test_episodic_memory_importance_access_and_expiry(store: ctxbase.Store) -> None:
    session = chat_session(store)
    episode, trivia = session["memories"]
    question = session["messages"][1]
    assert (episode.memory_type, episode.importance, episode.first_message_id) == (
        "episodic",
        0.8,
        question.id,
    )
    assert trivia.importance == 0.5  # importance FLOAT DEFAULT 0.5
    assert episode.access_count == 0 and episode.last_accessed_at is None

    got = store.memories.get(episode.id)  # reading it counts an access
    assert got.access_count == 1 and got.last_accessed_at is not None
    listed = store.memories.list(agent_id="motoko", memory_type="episodic").items
    assert {m.id for m in listed} == {episode.id, trivia.id}
    assert {m.id for m in store.memories.list(conversation_id=session["chat"].id).items} == {
        episode.id,
        trivia.id,
    }

    # Importance feeds the ranking: the same text, the more important memory first.
    low = store.memories.add("The user keeps a bonsai tree.", agent_id="motoko", importance=0.1)
    high = store.memories.add("The user keeps a bonsai tree.", agent_id="motoko", importance=0.9)
    hits = store.search("bonsai tree", kinds=["memory"], mode="vector", threshold=0.3).hits
    assert [h.id for h in hits[:2]] == [high.id, low.id]
    assert hits[0].score > hits[1].score
    assert store.memories.get(high.id).access_count == 2  # the search counted one, get one

    # Decay by importance over time is the application's: lower it, with a history.
    faded = store.memories.update(trivia.id, importance=0.2, actor="decay-job")
    assert faded.importance == 0.2
    assert [c.actor for c in store.memories.history(trivia.id)][-1] == "decay-job"
    # Expiry: a memory past its time is never returned, and pruning deletes it.
    store.memories.update(low.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(NotFoundError):
        store.memories.get(low.id)
    assert low.id not in {h.id for h in store.search("bonsai", kinds=["memory"]).hits}
    assert store.memories.prune() == 1
    brief = store.memories.add("Temporary: the user is on a call.", ttl_seconds=3600)
    assert brief.expires_at is not None


# --- ON DELETE CASCADE ----------------------------------------------------------------------


def test_deleting_a_conversation_deletes_messages_state_and_memories(store: ctxbase.Store) -> None:
    """Migration 002 "cascade deletion for messages", and the states and memories of the
    conversation (``ON DELETE CASCADE``); a memory that is only linked to it outlives it
    with the link cleared (``ON DELETE SET NULL``)."""
    personas_and_modules(store)
    doomed, kept = chat_session(store), chat_session(store)
    chat = doomed["chat"]
    linked = store.memories.add(
        "The user works nights.",
        agent_id="motoko",
        conversation_id=chat.id,
        first_message_id=doomed["messages"][1].id,
    )
    store.conversations.delete(chat.id)

    with pytest.raises(NotFoundError):
        store.conversations.get(chat.id)
    for message in doomed["messages"]:
        with pytest.raises(NotFoundError):
            store.messages.get(message.id)
    assert store.state.list(namespace=f"conversations/{chat.id}").items == []
    for memory in doomed["memories"]:
        with pytest.raises(NotFoundError):
            store.memories.get(memory.id)
    survivor = store.memories.get(linked.id)
    assert survivor.conversation_id is None and survivor.first_message_id is None
    hits = store.search("uneasy Puppet Master case", kinds=["message", "memory"], mode="text").hits
    assert hits and {
        getattr(h.item, "conversation_id", None) or getattr(h.item, "owner_conversation_id", None)
        for h in hits
    } == {kept["chat"].id}
    assert len(store.state.list(owner_conversation_id=kept["chat"].id).items) == 2
    # The personas and modules stay.
    assert store.contexts.get_latest("motoko").content == TEMPLATE


# --- The same over the REST API -----------------------------------------------------------


def test_the_engine_over_rest(store: ctxbase.Store) -> None:
    """The engine's routes (``Depends(get_db)``) as ctxbase's server serves them: the same
    calls through ``ctxbase.Client``, state compare-and-set through ``If-Match``."""
    with serve(store) as server, server.client() as client:
        personas_and_modules(client)
        session = chat_session(client)
        chat = session["chat"]
        namespace = state_namespace(chat.id, "motoko", "mood-tracker")
        assert client.state.get("mood", namespace=namespace).version == 1
        client.state.put(
            "mood",
            {"label": "calm"},
            namespace=namespace,
            expected_version=1,
            owner_conversation_id=chat.id,
        )
        with pytest.raises(VersionConflictError):
            client.state.put(
                "mood",
                {"label": "x"},
                namespace=namespace,
                expected_version=1,
                owner_conversation_id=chat.id,
            )
        answer = session["messages"][2]
        client.messages.update(answer.id, thinking="Calm, factual.")
        assert client.messages.get(answer.id).thinking == "Calm, factual."
        owned = client.memories.list(owner_conversation_id=chat.id).items
        assert len(owned) == 2
        raw = httpx.get(
            f"{server.url}/api/v1/projects/default/state/{namespace}/mood",
            headers={"Authorization": f"Bearer {server.admin_key}"},
        )
        assert raw.status_code == 200 and raw.headers["ETag"] == '"2"'
        assert json.loads(raw.text)["value"] == {"label": "calm"}
        client.conversations.delete(chat.id)
        assert client.memories.list(owner_conversation_id=chat.id).items == []
        assert client.state.list(namespace=f"conversations/{chat.id}").items == []


# --- Moving in: its rows, keeping their UUIDs and timestamps ------------------------------


def test_moving_in_keeps_uuids_timestamps_state_and_memory(store: ctxbase.Store) -> None:
    """Its conversations, messages, states and memories come over with their UUIDs and
    times (``POST …/import``); the imported state continues its versions, the imported
    memories decay by their age, and the conversation still takes its state and memories
    with it."""
    chat_id, persona, module = uuid.uuid4(), "motoko", "mood-tracker"
    ask_id, answer_id, old_id = (uuid.uuid4() for _ in range(3))
    long_ago = datetime.now(UTC) - timedelta(days=180)
    rows = [
        {
            "kind": "conversation",
            "id": str(chat_id),
            "title": "Night shift",
            "agent_id": persona,
            "provider": "anthropic",
            "provider_config": {"t": 0.4},
            "created_at": long_ago.isoformat(),
            "updated_at": long_ago.isoformat(),
        },
        {
            "kind": "message",
            "id": str(ask_id),
            "conversation_id": str(chat_id),
            "role": "user",
            "content": "Who is the Puppet Master?",
            "input_tokens": 7,
            "created_at": long_ago.isoformat(),
        },
        {
            "kind": "message",
            "id": str(answer_id),
            "conversation_id": str(chat_id),
            "role": "assistant",
            "content": "A ghost without a body.",
            "thinking": "Be terse.",
            "metadata": {"stage": "IMMEDIATE"},
            "output_tokens": 6,
            "created_at": (long_ago + timedelta(seconds=4)).isoformat(),
        },
        {
            "kind": "state",
            "namespace": state_namespace(chat_id, persona, module),
            "key": "mood",
            "value": {"label": "curious"},
            "version": 7,
            "owner_conversation_id": str(chat_id),
        },
        {
            "kind": "memory",
            "id": str(old_id),
            "content": "The user asks about the Puppet Master.",
            "agent_id": persona,
            "conversation_id": str(chat_id),
            "owner_conversation_id": str(chat_id),
            "first_message_id": str(ask_id),
            "memory_type": "episodic",
            "importance": 0.6,
            "access_count": 4,
            "last_accessed_at": long_ago.isoformat(),
            "created_at": long_ago.isoformat(),
        },
    ]
    with serve(store) as server, server.client() as client:
        report = client.imports.rows(rows)
        assert report.written == {"conversation": 1, "message": 2, "state": 1, "memory": 1}
        assert report.ids == {}  # its ids are UUIDs: kept as they are, none mapped
        chat = client.conversations.get(chat_id)
        assert chat.created_at == long_ago and chat.agent_id == persona
        assert (chat.message_count, chat.input_tokens, chat.output_tokens) == (2, 7, 6)
        answer = client.messages.get(answer_id)
        assert (answer.position, answer.thinking, answer.metadata) == (
            2,
            "Be terse.",
            {"stage": "IMMEDIATE"},
        )
        namespace = state_namespace(chat_id, persona, module)
        moved = client.state.put(
            "mood",
            {"label": "calm"},
            namespace=namespace,
            expected_version=7,
            owner_conversation_id=chat_id,
        )
        assert moved.version == 8
        old = client.memories.list(agent_id=persona).items[0]
        assert (old.id, old.access_count, old.created_at) == (old_id, 4, long_ago)
        assert old.first_message_id == ask_id

        # Decay: the same memory made today outranks the one of six months ago.
        client.memories.add(
            "The user asks about the Puppet Master.",
            agent_id=persona,
            memory_type="episodic",
            importance=0.6,
        )
        hits = client.search("Puppet Master", kinds=["memory"], mode="vector", threshold=0.3).hits
        assert [h.item.created_at > long_ago for h in hits] == [True, False]

        client.conversations.delete(chat_id)  # its state and its memory go with it
        assert client.state.list(namespace=f"conversations/{chat_id}").items == []
        with pytest.raises(NotFoundError):
            client.memories.get(old_id)
