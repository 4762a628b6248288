"""The LangChain adapters on every backend: a chat history that reads back what it was
given for session ids of any form, and a vector store over context units and memories
(ids, metadata, scores against reference maths, filters, delete, MMR, retrievers)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import FakeEmbeddings
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

import ctxbase
from ctxbase.db.vectors.base import reference_scores
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.integrations.langchain import (
    CtxbaseChatMessageHistory,
    CtxbaseEmbeddings,
    CtxbaseVectorStore,
)
from ctxbase.server import create_app
from tests.live import live_server

MESSAGES = [
    SystemMessage("You are terse."),
    HumanMessage("What is 6 x 7?", id="question-1"),
    AIMessage(
        "",
        tool_calls=[{"name": "multiply", "args": {"a": 6, "b": 7}, "id": "call-1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 9, "total_tokens": 21},
        response_metadata={"finish_reason": "tool_calls", "model_name": "m"},
    ),
    ToolMessage("42", tool_call_id="call-1", name="multiply"),
    AIMessage("42.", additional_kwargs={"refusal": None}, name="bot"),
    HumanMessage([{"type": "text", "text": "and with an image?"}, {"type": "image", "url": "x"}]),
    ChatMessage("a note", role="system"),
]
SESSION_IDS = ["42", "user@example.com/chat #1", "ünïcødé 会话", "a" * 500, " spaced out "]


# --- chat history -------------------------------------------------------------------------


def test_a_history_reads_back_every_message_as_it_was_written(store: ctxbase.Store) -> None:
    history = CtxbaseChatMessageHistory(store, "session-1", title="math", agent_id="tutor")
    assert history.messages == [] and history.conversation_id is None
    history.add_messages(MESSAGES[:3])
    history.add_message(MESSAGES[3])
    history.add_messages(MESSAGES[4:])
    assert history.messages == MESSAGES
    chat = store.conversations.get(history.conversation_id)
    assert (chat.title, chat.agent_id, chat.message_count) == ("math", "tutor", len(MESSAGES))
    assert (chat.input_tokens, chat.output_tokens) == (12, 9)
    stored = store.messages.list(chat.id).items
    roles = ["system", "user", "assistant", "tool", "assistant", "user", "system"]
    assert [m.role for m in stored] == roles
    assert stored[2].finish_reason == "tool_calls"
    assert stored[5].content.startswith('[{"type": "text"')  # non-text content, as JSON


def test_session_ids_of_any_form_keep_their_own_conversations(store: ctxbase.Store) -> None:
    for session_id in SESSION_IDS:
        CtxbaseChatMessageHistory(store, session_id).add_user_message(f"I am {session_id!r}")
    for session_id in SESSION_IDS:
        again = CtxbaseChatMessageHistory(store, session_id)  # found again, by a new object
        assert [m.content for m in again.messages] == [f"I am {session_id!r}"]
    assert len(store.conversations.list().items) == len(SESSION_IDS)
    elsewhere = CtxbaseChatMessageHistory(store, "42", project="other")
    store.projects.create("other")
    assert elsewhere.messages == []


def test_clearing_deletes_the_conversation_and_a_new_message_starts_another(
    store: ctxbase.Store,
) -> None:
    history = CtxbaseChatMessageHistory(store, "s")
    history.add_user_message("first")
    first = history.conversation_id
    other_view = CtxbaseChatMessageHistory(store, "s")
    assert len(other_view.messages) == 1
    history.clear()
    assert history.messages == [] and other_view.messages == []
    assert store.conversations.list().items == []
    other_view.add_ai_message("second")  # its conversation is gone: a new one
    assert [m.content for m in history.messages] == ["second"]
    assert history.conversation_id != first
    history.clear()
    history.clear()  # nothing left: no error


def test_messages_written_by_other_interfaces_read_as_their_roles(store: ctxbase.Store) -> None:
    history = CtxbaseChatMessageHistory(store, "mixed")
    history.add_user_message("from langchain")
    written = store.messages.append_many(
        history.conversation_id,
        [
            {"role": "assistant", "content": "from the library"},
            {"role": "tool", "content": "3", "metadata": {"tool_call_id": "c9"}},
            {"role": "system", "content": "sys"},
        ],
    )
    messages = history.messages
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, SystemMessage]
    assert messages[1].id == str(written[0].id)
    assert isinstance(messages[2], ToolMessage) and messages[2].tool_call_id == "c9"


def test_the_history_has_working_async_methods(store: ctxbase.Store) -> None:
    history = CtxbaseChatMessageHistory(store, "async")

    async def run() -> list[Any]:
        await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
        found = await history.aget_messages()
        await history.aclear()
        return found + await history.aget_messages()

    assert [m.content for m in asyncio.run(run())] == ["hi", "hello"]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"], indirect=True)
def test_the_history_works_over_http_with_a_client(store: ctxbase.Store) -> None:
    with live_server(create_app(store=store)) as url, ctxbase.Client(url) as client:
        history = CtxbaseChatMessageHistory(client, "over http")
        history.add_messages(MESSAGES)
        assert CtxbaseChatMessageHistory(client, "over http").messages == MESSAGES
        history.clear()
        assert store.conversations.list().items == []


def test_a_session_id_must_be_a_non_empty_string(store: ctxbase.Store) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        CtxbaseChatMessageHistory(store, "")


# --- vector store -------------------------------------------------------------------------

TEXTS = [
    "the deploy pipeline failed on the staging cluster",
    "rotate the database password every ninety days",
    "the staging cluster runs three replicas",
    "lunch menu: soup and bread",
    "deploy to production after the staging checks pass",
]
METADATA = [{"team": "ops", "n": i} for i in range(4)] + [{"team": "release", "n": 4}]


def test_context_documents_keep_their_ids_texts_and_metadata(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store, source_type="runbook")
    ids = vectors.add_texts(TEXTS, METADATA, ids=[f"doc-{i}" for i in range(5)])
    assert ids == [f"doc-{i}" for i in range(5)]
    found = vectors.get_by_ids(["doc-3", "missing", "doc-0", "doc-3"])
    assert found == [
        Document(id="doc-3", page_content=TEXTS[3], metadata=METADATA[3]),
        Document(id="doc-0", page_content=TEXTS[0], metadata=METADATA[0]),
    ]
    assert store.contexts.get_latest("doc-1").source_type == "runbook"
    generated = vectors.add_documents([Document(page_content="no id given")])
    assert vectors.get_by_ids(generated)[0].page_content == "no id given"
    vectors.add_texts(["lunch menu: pasta"], [{"team": "ops", "n": 3}], ids=["doc-3"])
    assert vectors.get_by_ids(["doc-3"])[0].page_content == "lunch menu: pasta"
    assert store.contexts.get_latest("doc-3").version == 2
    hits = vectors.similarity_search("lunch menu soup bread", k=10)
    assert "lunch menu: soup and bread" not in [doc.page_content for doc in hits]


def test_scores_match_the_reference_cosine_similarity(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store)
    ids = vectors.add_texts(TEXTS, METADATA)
    query = "staging cluster deploy"
    found = vectors.similarity_search_with_score(query, k=5)
    embedder = HashEmbedder(64)
    expected = reference_scores(embedder.embed(TEXTS), embedder.embed([query])[0], "cosine")
    by_id = {ident: float(score) for ident, score in zip(ids, expected, strict=True)}
    assert [doc.id for doc, _ in found] == sorted(by_id, key=lambda i: -by_id[i])
    for doc, score in found:
        assert score == pytest.approx(by_id[doc.id], abs=1e-5)
    relevant = vectors.similarity_search_with_relevance_scores(query, k=5, score_threshold=0.3)
    assert relevant and all(0.3 <= score <= 1 for _, score in relevant)
    assert [doc.id for doc, _ in relevant] == [doc.id for doc, s in found if s >= 0.3]


def test_filters_are_metadata_pairs_or_search_filters(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store)
    vectors.add_texts(TEXTS, METADATA)
    release = vectors.similarity_search("deploy", k=5, filter={"team": "release"})
    assert [doc.page_content for doc in release] == [TEXTS[4]]
    assert vectors.similarity_search("deploy", k=5, filter={"source_type": "note"}) == []
    assert len(vectors.similarity_search("deploy", k=5, filter={"source_type": "document"})) == 5
    with pytest.raises(TypeError, match="unexpected keyword"):
        vectors.similarity_search("deploy", k=5, filters={"team": "ops"})


def test_delete_removes_documents_and_every_one_without_ids(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store)
    ids = vectors.add_texts(TEXTS)
    assert vectors.delete([ids[0], "never-added"]) is True
    assert [doc.id for doc in vectors.get_by_ids(ids)] == ids[1:]
    assert ids[0] not in [doc.id for doc in vectors.similarity_search("deploy", k=10)]
    vectors.delete()
    assert vectors.get_by_ids(ids) == [] and store.contexts.list().items == []


def test_mmr_prefers_documents_unlike_those_already_chosen(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store)
    vectors.add_texts(
        [
            "apple banana cherry apple banana",
            "apple banana cherry apple banana cherry",
            "apple grape melon kiwi",
        ],
        ids=["twin-1", "twin-2", "other"],
    )
    nearest = vectors.similarity_search("apple banana cherry", k=2)
    assert {doc.id for doc in nearest} == {"twin-1", "twin-2"}
    diverse = vectors.max_marginal_relevance_search(
        "apple banana cherry", k=2, fetch_k=3, lambda_mult=0.1
    )
    assert diverse[0].id in {"twin-1", "twin-2"} and diverse[1].id == "other"
    retriever = vectors.as_retriever(
        search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3, "lambda_mult": 0.1}
    )
    assert [doc.id for doc in retriever.invoke("apple banana cherry")] == [
        doc.id for doc in diverse
    ]


def test_retrievers_of_each_search_type(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store)
    vectors.add_texts(TEXTS, METADATA)
    top = vectors.as_retriever(search_kwargs={"k": 2}).invoke("staging cluster replicas")
    assert len(top) == 2 and top[0].page_content == TEXTS[2]
    filtered = vectors.as_retriever(search_kwargs={"k": 5, "filter": {"team": "release"}})
    assert [doc.page_content for doc in filtered.invoke("deploy")] == [TEXTS[4]]
    threshold = vectors.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.99, "k": 5}
    )
    assert threshold.invoke("lunch") == []

    async def run() -> list[Document]:
        await vectors.aadd_texts(["async text about soup"], ids=["async-1"])
        return await vectors.asimilarity_search("async text about soup", k=1)

    assert [doc.id for doc in asyncio.run(run())] == ["async-1"]


def test_memories_as_documents(store: ctxbase.Store) -> None:
    vectors = CtxbaseVectorStore(store, kind="memory", user_id="u-7", memory_type="fact")
    ids = vectors.add_texts(
        ["the user drinks espresso", "the user lives in Lyon"], [{"src": "chat"}, {}]
    )
    memories = {str(m.id): m for m in store.memories.list().items}
    assert set(ids) == set(memories)
    assert {(m.user_id, m.memory_type) for m in memories.values()} == {("u-7", "fact")}
    assert vectors.similarity_search("espresso", k=1, filter={"user_id": "u-7"})[0].id == ids[0]
    assert vectors.similarity_search("espresso", k=1, filter={"user_id": "u-8"}) == []
    vectors.add_texts(["the user drinks green tea"], [{"src": "chat"}], ids=[ids[0]])
    assert store.memories.get(ids[0]).content == "the user drinks green tea"
    with pytest.raises(ValueError, match="assigns memories' ids"):
        vectors.add_texts(["x"], ids=["01a2509a-c420-7c45-a498-6dce086b5678"])
    vectors.delete([ids[1]])
    assert [doc.id for doc in vectors.get_by_ids(ids)] == [ids[0]]
    assert store.contexts.list().items == []  # memories only


def test_built_from_texts_with_the_stores_own_embeddings(store: ctxbase.Store) -> None:
    embeddings = CtxbaseEmbeddings(store)
    built = CtxbaseVectorStore.from_texts(
        TEXTS, embeddings, METADATA, store=store, kind="context", source_type="file"
    )
    assert len(built.similarity_search("deploy", k=10)) == 5
    query = np.asarray(embeddings.embed_query("deploy"))
    documents = np.asarray(embeddings.embed_documents(TEXTS))
    assert query.shape == (64,) and documents.shape == (5, 64)
    assert isinstance(built.embeddings, CtxbaseEmbeddings)
    with pytest.raises(ValueError, match="its own model"):
        CtxbaseVectorStore.from_texts(TEXTS, FakeEmbeddings(size=8), store=store)
    with pytest.raises(ValueError, match="needs store="):
        CtxbaseVectorStore.from_documents([Document(page_content="x")], None)  # type: ignore[arg-type]
