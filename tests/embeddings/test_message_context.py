"""A message is embedded after the turns before it (``embed_message_context``), on every
path that makes its vector: appends, edits, imports and the backlog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import ctxbase
from ctxbase.db.schema import Embedding, table
from ctxbase.store.embedding import text_hash
from tests.conftest import open_store, store_on

embeddings = table(Embedding)
TURNS = [
    {"role": "user", "content": "I moved to Lisbon in May", "metadata": {"name": "Caroline"}},
    {"role": "assistant", "content": "How do you like it?", "metadata": {"name": " Mel "}},
    {"role": "user", "content": "The light is wonderful", "metadata": {"name": "Caroline"}},
    {"role": "assistant", "content": "I can imagine", "metadata": {}},
]
#: What each of TURNS is embedded from, with two earlier turns of context.
TEXTS = [
    "Caroline: I moved to Lisbon in May",
    "Caroline: I moved to Lisbon in May\nMel: How do you like it?",
    "Caroline: I moved to Lisbon in May\nMel: How do you like it?\n"
    "Caroline: The light is wonderful",
    "Mel: How do you like it?\nCaroline: The light is wonderful\nassistant: I can imagine",
]


def _hashes(store: ctxbase.Store, ids: list[uuid.UUID]) -> list[str | None]:
    with store.db.connect() as connection:
        found = dict(
            connection.execute(
                select(embeddings.c.message_id, embeddings.c.content_hash).where(
                    embeddings.c.message_id.in_(ids)
                )
            ).all()
        )
    return [found.get(i) for i in ids]


@pytest.fixture
def chat(store: ctxbase.Store) -> Iterator[uuid.UUID]:
    yield store.conversations.create(title="context").id


def test_appends_one_by_one_or_together_embed_the_same_texts(
    store: ctxbase.Store, chat: uuid.UUID
) -> None:
    first = store.messages.append_many(chat, TURNS[:1])
    rest = [store.messages.append(chat, **turn) for turn in TURNS[1:]]  # type: ignore[arg-type]
    other = store.conversations.create().id
    together = store.messages.append_many(other, TURNS)
    expected = [text_hash(t) for t in TEXTS]
    assert _hashes(store, [m.id for m in first + rest]) == expected
    assert _hashes(store, [m.id for m in together]) == expected
    # only the vector sees the context: content and full text are the message's own
    assert [m.content for m in together] == [t["content"] for t in TURNS]
    hits = store.search("light wonderful", kinds=["message"], mode="text").hits
    assert {hit.item.content for hit in hits} == {"The light is wonderful"}


def test_without_context_a_message_is_embedded_alone(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for store in store_on(backend, tmp_path, request, embed_message_context=0):
        chat = store.conversations.create().id
        appended = store.messages.append_many(chat, TURNS)
        assert _hashes(store, [m.id for m in appended]) == [text_hash(t["content"]) for t in TURNS]


def test_an_edit_re_embeds_the_messages_whose_context_holds_it(
    store: ctxbase.Store, chat: uuid.UUID
) -> None:
    later = [{"role": "user", "content": f"later {i}"} for i in range(3)]
    appended = store.messages.append_many(chat, TURNS[:2] + later)
    ids = [m.id for m in appended]
    before = _hashes(store, ids)
    store.messages.update(ids[1], content="Is it sunny?")
    after = _hashes(store, ids)
    assert after[0] == before[0]
    assert after[1] == text_hash("Caroline: I moved to Lisbon in May\nMel: Is it sunny?")
    assert after[2] == text_hash(
        "Caroline: I moved to Lisbon in May\nMel: Is it sunny?\nuser: later 0"
    )
    assert after[3] == text_hash("Mel: Is it sunny?\nuser: later 0\nuser: later 1")
    assert after[4] == before[4]  # beyond the window
    # a new speaker's name changes the vectors too; other metadata leaves them alone
    store.messages.update(ids[1], metadata={"name": "Melanie"})
    assert _hashes(store, ids)[1] == text_hash(
        "Caroline: I moved to Lisbon in May\nMelanie: Is it sunny?"
    )
    renamed = _hashes(store, ids)
    store.messages.update(ids[1], metadata={"name": "Melanie", "mood": "curious"})
    assert _hashes(store, ids) == renamed


def test_imported_messages_are_embedded_as_appended_ones(
    store: ctxbase.Store, chat: uuid.UUID
) -> None:
    store.messages.append_many(chat, TURNS[:1])
    rows = [{"kind": "message", "conversation_id": str(chat), **turn} for turn in TURNS[1:]]
    rows += [
        {"kind": "conversation", "id": "fresh"},
        *({"kind": "message", "conversation_id": "fresh", **turn} for turn in TURNS),
    ]
    report = store.imports.rows(rows)
    assert report.embedded == 3 + len(TURNS)
    for conversation in (chat, report.ids["conversation"]["fresh"]):
        listed = store.messages.list(conversation).items
        assert _hashes(store, [m.id for m in listed]) == [text_hash(t) for t in TEXTS]


def test_the_backlog_embeds_with_the_same_context(database_url: str) -> None:
    if database_url == "sqlite://":
        pytest.skip("a second opening of an in-memory database is another database")
    with open_store(database_url, embedder="none") as unembedded:
        chat = unembedded.conversations.create().id
        appended = unembedded.messages.append_many(chat, TURNS)
    with open_store(database_url) as store:
        assert store.embeddings.backfill() == len(TURNS)
        assert _hashes(store, [m.id for m in appended]) == [text_hash(t) for t in TEXTS]


def test_another_projects_turns_are_never_read_for_context(
    store: ctxbase.Store, chat: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append, edit or import aimed at another project's conversation fails, and the turns of
    that conversation never reach the embedder on the way."""
    stored = store.messages.append_many(chat, TURNS)
    store.projects.create("elsewhere", name="Elsewhere")
    embedded: list[str] = []
    vectors_for = store.embeddings.vectors_for

    def recording(kind: str, texts: list[str]) -> object:
        embedded.extend(texts)
        return vectors_for(kind, texts)

    monkeypatch.setattr(store.embeddings, "vectors_for", recording)
    with pytest.raises(ctxbase.NotFoundError):
        store.messages.append(chat, role="user", content="hello", project="elsewhere")
    with pytest.raises(ctxbase.NotFoundError):
        store.messages.update(stored[1].id, content="edited", project="elsewhere")
    row = {"kind": "message", "conversation_id": str(chat), "role": "user", "content": "hi"}
    with pytest.raises(ctxbase.CtxbaseError):
        store.imports.rows([row], project="elsewhere")
    assert not any("Lisbon" in text or "light" in text for text in embedded), embedded
