"""Editing messages: history, re-embedding, full text, positions and totals unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

import ctxbase
from ctxbase.db.schema import Embedding, table
from ctxbase.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from ctxbase.store.embedding import text_hash

OLD = "the quokka parser crashed on invoice twelve"
NEW = "the wombat renderer stalled on receipt nine"


def _chat(api: Any) -> tuple[Any, list[Any]]:
    chat = api.conversations.create(title="edits")
    messages = api.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": OLD, "input_tokens": 7},
            {"role": "assistant", "content": "looking into it", "output_tokens": 11},
            {"role": "user", "content": "thanks", "thinking": "calm", "input_tokens": 2},
        ],
    )
    return chat, messages


def test_an_edit_changes_the_message_and_keeps_the_old_values(api: Any) -> None:
    chat, (first, second, third) = _chat(api)
    assert first.updated_at == first.created_at

    edited = api.messages.update(
        first.id, content=NEW, metadata={"edited": True}, actor="agent:fixer"
    )
    assert (edited.content, edited.metadata, edited.thinking) == (NEW, {"edited": True}, None)
    assert (edited.position, edited.role, edited.input_tokens) == (1, "user", 7)
    assert edited.created_at == first.created_at and edited.updated_at > first.updated_at
    assert api.messages.get(first.id) == edited

    again = api.messages.update(third.id, thinking="relieved")
    assert (again.thinking, again.content) == ("relieved", "thanks")
    unchanged = api.messages.update(first.id, content=NEW)  # nothing changes: no entry
    assert unchanged.updated_at == edited.updated_at

    (change,) = api.messages.history(first.id)
    assert change.action == "update" and change.message_id == first.id
    assert change.old_value == {"content": OLD, "metadata": {}}
    assert change.new_value == {"content": NEW, "metadata": {"edited": True}}
    assert change.actor == "agent:fixer" and change.created_at == edited.updated_at
    assert api.messages.history(second.id) == []  # appending is not an edit
    assert [c.new_value for c in api.messages.history(third.id)] == [{"thinking": "relieved"}]
    assert api.messages.history(third.id)[0].actor is None

    listed = api.messages.list(chat.id).items
    assert [(m.id, m.position) for m in listed] == [(first.id, 1), (second.id, 2), (third.id, 3)]
    totals = api.conversations.get(chat.id)
    assert (totals.message_count, totals.input_tokens, totals.output_tokens) == (3, 9, 11)


def test_successive_edits_are_kept_in_order(api: Any) -> None:
    _, (first, *_) = _chat(api)
    for number in range(1, 4):
        api.messages.update(first.id, content=f"draft {number}", actor=f"a{number}")
    history = api.messages.history(first.id)
    assert [(c.old_value["content"], c.new_value["content"]) for c in history] == [
        (OLD, "draft 1"),
        ("draft 1", "draft 2"),
        ("draft 2", "draft 3"),
    ]
    assert [c.actor for c in history] == ["a1", "a2", "a3"]


def test_search_finds_the_new_text_and_not_the_old(api: Any, store: ctxbase.Store) -> None:
    _, (first, *_) = _chat(api)
    api.messages.update(first.id, content=NEW)
    for mode in ("text", "vector", "hybrid"):
        found = api.search(NEW, kinds=["message"], mode=mode)
        assert [hit.id for hit in found.hits][:1] == [first.id], mode
        assert found.hits[0].retrieval_method == ("hybrid" if mode == "hybrid" else mode)
        if mode != "hybrid":  # (hybrid ranks every item; its vector leg has no threshold)
            old = api.search(OLD, kinds=["message"], mode=mode)
            assert first.id not in [hit.id for hit in old.hits], mode
    # one vector, of the new text (a first message has no earlier turn for context): the
    # old one is gone, not merely outranked
    embeddings = table(Embedding)
    with store.db.connect() as connection:
        hashes = connection.execute(
            select(embeddings.c.content_hash).where(embeddings.c.message_id == first.id)
        ).scalars()
        assert list(hashes) == [text_hash(f"user: {NEW}")]


def test_an_edit_without_content_keeps_the_vector(api: Any, store: ctxbase.Store) -> None:
    _, (first, *_) = _chat(api)
    embeddings = table(Embedding)
    query = select(embeddings.c.id).where(embeddings.c.message_id == first.id)
    with store.db.connect() as connection:
        before = list(connection.execute(query).scalars())
    api.messages.update(first.id, metadata={"reviewed": True})
    with store.db.connect() as connection:
        assert list(connection.execute(query).scalars()) == before


def test_what_happened_is_not_editable(api: Any) -> None:
    _, (first, *_) = _chat(api)
    for field, value in (
        ("input_tokens", 1),
        ("role", "assistant"),
        ("position", 9),
        ("finish_reason", "x"),
    ):
        with pytest.raises(InvalidInputError) as refused:
            api.messages.update(first.id, **{field: value})
        assert field in str(refused.value)
    with pytest.raises(InvalidInputError):
        api.messages.update(first.id, content="nul \x00")
    with pytest.raises(InvalidInputError):
        api.messages.update(first.id, metadata={"n": float("nan")})
    assert api.messages.get(first.id).content == OLD
    assert api.messages.history(first.id) == []


def test_an_unknown_or_foreign_message_is_not_found(api: Any) -> None:
    api.projects.create("elsewhere")
    chat = api.conversations.create(project="elsewhere")
    foreign = api.messages.append(chat.id, role="user", content="theirs", project="elsewhere")
    for message_id in (uuid.uuid4(), foreign.id):
        with pytest.raises(NotFoundError):
            api.messages.update(message_id, content="mine now")
        with pytest.raises(NotFoundError):
            api.messages.history(message_id)
    assert api.messages.get(foreign.id, project="elsewhere").content == "theirs"


def test_a_deleted_messages_history_goes_with_it(api: Any) -> None:
    chat, (first, *_) = _chat(api)
    api.messages.update(first.id, content=NEW)
    api.conversations.delete(chat.id)
    with pytest.raises(NotFoundError):
        api.messages.history(first.id)


def test_limits_apply_to_edits(api: Any, store: ctxbase.Store) -> None:
    _, (first, *_) = _chat(api)
    with pytest.raises(PayloadTooLargeError):
        api.messages.update(first.id, content="x" * (store.settings.max_content_bytes + 1))
    if isinstance(api, ctxbase.Store):  # over HTTP the header's own limit answers
        with pytest.raises(InvalidInputError) as refused:
            api.messages.update(first.id, content=NEW, actor="a" * 201)
        assert "actor" in str(refused.value)
    assert api.messages.get(first.id).content == OLD
