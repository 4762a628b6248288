"""The schema behaves the same on every backend: types, constraints and cascades."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import delete, func, select

import ctxbase
from ctxbase.db.schema import (
    ContextUnit,
    Conversation,
    Embedding,
    Memory,
    MemoryChange,
    Message,
    Project,
    StateEntry,
    Tenant,
)
from ctxbase.errors import ConflictError, InvalidInputError


def _tenant_and_project(session) -> Project:
    tenant = Tenant(slug=f"t-{uuid.uuid4().hex[:8]}", name="Tenant")
    session.add(tenant)
    session.flush()
    project = Project(tenant_id=tenant.id, slug="default", name="Default")
    session.add(project)
    session.flush()
    return project


def _conversation_with_embedded_message(session, project: Project) -> tuple[Conversation, Message]:
    conversation = Conversation(project_id=project.id, title="hello")
    session.add(conversation)
    session.flush()
    message = Message(
        project_id=project.id,
        conversation_id=conversation.id,
        position=1,
        role="user",
        content="hi",
    )
    session.add(message)
    session.flush()
    session.add(
        Embedding(
            project_id=project.id,
            message_id=message.id,
            model="fake",
            dimensions=3,
            content_hash="h",
            vector=[0.1, 0.2, 0.3],
        )
    )
    return conversation, message


def _count(store: ctxbase.Store, model: type) -> int:
    with store.db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_ids_are_time_ordered_uuids(store: ctxbase.Store) -> None:
    with store.db.session(write=True) as session:
        projects = [_tenant_and_project(session) for _ in range(5)]
    ids = [p.id for p in projects]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_json_timestamps_and_vectors_round_trip(store: ctxbase.Store) -> None:
    vector = np.array([0.25, -1.5, 3.0e-5, 7.0], dtype=np.float32)
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    with store.db.session(write=True) as session:
        project = _tenant_and_project(session)
        memory = Memory(
            project_id=project.id,
            content="likes espresso",
            meta={"nested": {"list": [1, 2.5, "x", None, True]}, "unicode": "café ☕"},
            expires_at=stamp,
        )
        session.add(memory)
        session.flush()
        session.add(
            Embedding(
                project_id=project.id,
                memory_id=memory.id,
                model="m",
                dimensions=4,
                content_hash="c",
                vector=vector,
            )
        )
    with store.db.session() as session:
        loaded = session.scalars(select(Memory)).one()
        embedding = session.scalars(select(Embedding)).one()
    assert loaded.meta == {"nested": {"list": [1, 2.5, "x", None, True]}, "unicode": "café ☕"}
    assert loaded.expires_at == stamp
    assert loaded.expires_at.tzinfo is not None
    assert loaded.created_at.tzinfo is not None
    assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert embedding.vector.dtype == np.float32
    np.testing.assert_array_equal(embedding.vector, vector)
    assert (embedding.owner_kind, embedding.owner_id) == ("memory", loaded.id)


def test_deleting_a_conversation_deletes_messages_and_their_embeddings(
    store: ctxbase.Store,
) -> None:
    with store.db.session(write=True) as session:
        project = _tenant_and_project(session)
        conversation, _ = _conversation_with_embedded_message(session, project)
        memory = Memory(project_id=project.id, content="kept", conversation_id=conversation.id)
        session.add(memory)
    assert (_count(store, Message), _count(store, Embedding)) == (1, 1)
    with store.db.session(write=True) as session:
        session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    assert (_count(store, Message), _count(store, Embedding)) == (0, 0)
    with store.db.session() as session:
        kept = session.scalars(select(Memory)).one()
    assert kept.conversation_id is None  # the memory outlives its conversation


def test_deleting_a_tenant_deletes_everything_under_it(store: ctxbase.Store) -> None:
    with store.db.session(write=True) as session:
        project = _tenant_and_project(session)
        _conversation_with_embedded_message(session, project)
        memory = Memory(project_id=project.id, content="m")
        session.add(memory)
        session.flush()
        session.add(MemoryChange(memory_id=memory.id, action="add", new_value={"content": "m"}))
        session.add(
            ContextUnit(
                project_id=project.id, source_type="note", name="n", content="c", content_hash="h"
            )
        )
        session.add(StateEntry(project_id=project.id, namespace="a/b", key="k", value={"v": 1}))
        tenant_id = project.tenant_id
    with store.db.session(write=True) as session:
        session.execute(delete(Tenant).where(Tenant.id == tenant_id))
    with store.db.session() as session:
        left = session.scalar(select(func.count()).where(Project.tenant_id == tenant_id))
    assert left == 0
    for model in (Conversation, Message, Embedding, Memory, MemoryChange, ContextUnit, StateEntry):
        assert _count(store, model) == 0, model.__name__


def test_unique_keys_are_conflicts(store: ctxbase.Store) -> None:
    with store.db.session(write=True) as session:
        project = _tenant_and_project(session)
        _conversation_with_embedded_message(session, project)
    with pytest.raises(ConflictError), store.db.session(write=True) as session:
        conversation = session.scalars(select(Conversation)).one()
        session.add(
            Message(
                project_id=project.id,
                conversation_id=conversation.id,
                position=1,
                role="assistant",
                content="same position",
            )
        )
    with pytest.raises(ConflictError), store.db.session(write=True) as session:
        message = session.scalars(select(Message)).one()
        session.add(
            Embedding(
                project_id=project.id,
                message_id=message.id,
                model="fake",
                dimensions=3,
                content_hash="h",
                vector=[1, 2, 3],
            )
        )
    assert _count(store, Message) == 1
    assert _count(store, Embedding) == 1


def test_schema_rules_are_invalid_input(store: ctxbase.Store) -> None:
    with store.db.session(write=True) as session:
        project = _tenant_and_project(session)
    bad_rows = [
        Message(
            project_id=project.id,
            conversation_id=uuid.uuid4(),
            position=1,
            role="user",
            content="orphan",
        ),  # no such conversation
        Memory(project_id=project.id, content="x", importance=1.5),
        Embedding(
            project_id=project.id, model="m", dimensions=1, content_hash="h", vector=[1.0]
        ),  # no owner
    ]
    for row in bad_rows:
        with pytest.raises(InvalidInputError), store.db.session(write=True) as session:
            session.add(row)
    with pytest.raises(InvalidInputError), store.db.session(write=True) as session:
        conversation = Conversation(project_id=project.id)
        session.add(conversation)
        session.flush()
        session.add(
            Message(
                project_id=project.id,
                conversation_id=conversation.id,
                position=1,
                role="robot",
                content="bad role",
            )
        )
    assert _count(store, Conversation) == 0  # the failed transaction wrote nothing
