"""Search with the real local model on each backend, and without any embedder."""

from __future__ import annotations

import pytest

import ctxbase
from tests.conftest import open_store

# The right answer shares no word with the question; each distractor shares one or two.
MEMORIES = [
    "I always start my day with an espresso",
    "Drink driving is illegal in every state",
    "The user interface was redesigned last year",
    "The morning newspaper arrives at seven",
    "Soft drink sales fell in the third quarter",
]


@pytest.fixture
def model_store(database_url: str) -> ctxbase.Store:
    with open_store(database_url, embedder="local") as store:
        yield store


@pytest.mark.model
def test_meaning_beats_lexical_distractors(model_store: ctxbase.Store) -> None:
    for text in MEMORIES:
        model_store.memories.add(text)
    question = "what does the user drink in the morning?"
    vector = model_store.search(question, kinds=["memory"], mode="vector", threshold=0.0)
    assert vector.hits[0].item.content == "I always start my day with an espresso"
    text = model_store.search(question, kinds=["memory"], mode="text")
    assert text.hits[0].item.content != "I always start my day with an espresso"


@pytest.mark.model
def test_hybrid_finds_an_identifier_vector_search_misses(model_store: ctxbase.Store) -> None:
    chat = model_store.conversations.create()
    model_store.messages.append_many(chat.id, [
        {"role": "user", "content": f"Ticket about login problems number {i}: users cannot sign in"}
        for i in range(12)
    ] + [{"role": "user", "content": "Build failed with error XQ-7731 in module billing"}])
    query = "XQ-7731"
    vector = model_store.search(query, mode="vector", k=3, threshold=0.0)
    hybrid = model_store.search(query, mode="hybrid", k=3)
    wanted = "Build failed with error XQ-7731 in module billing"
    assert wanted not in [hit.item.content for hit in vector.hits[:1]]
    assert hybrid.hits[0].item.content == wanted


def test_without_an_embedder_search_is_full_text(database_url: str) -> None:
    with open_store(database_url, embedder="none") as store:
        store.memories.add("the espresso machine is broken")
        for mode in ("vector", "hybrid"):
            result = store.search("espresso", mode=mode)
            assert result.fallback == "no embedder is configured"
            assert [hit.retrieval_method for hit in result.hits] == ["text"]
