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


GATEWAY_NOTES = [
    "To fix connection errors in the payment gateway, restart the gateway service and retry",
    "Payment gateway connection problems are usually fixed by renewing the TLS certificate",
    "How to fix a payment gateway that keeps dropping connections: raise the timeout",
    "The payment gateway connection pool was exhausted; we fixed it by raising the pool size",
    "Connection resets in the payment gateway happen when the load balancer idles out",
]
# The one message holding the identifier is about something else entirely.
NIGHTLY_LOG = (
    "Nightly batch log, 02:14: 1,204 invoices exported, 3 skipped for missing VAT numbers; "
    "archive job rotated 14 files; one worker crashed with ERR_CONN_RESET_4412 and was restarted"
)


@pytest.mark.model
def test_hybrid_finds_an_identifier_vector_search_misses(model_store: ctxbase.Store) -> None:
    # Context units: embedded as they are (a message's vector holds its speaker and turns).
    for number, text in enumerate([*GATEWAY_NOTES, NIGHTLY_LOG]):
        model_store.contexts.add(f"notes/{number}.md", text)
    query = "how do I fix ERR_CONN_RESET_4412 in the payment gateway?"

    def top3(mode: str) -> list[str]:
        return [hit.item.content for hit in model_store.search(query, mode=mode, k=3).hits]

    assert NIGHTLY_LOG not in top3("vector")
    assert top3("hybrid")[0] == NIGHTLY_LOG
    assert top3("text")[0] == NIGHTLY_LOG


def test_without_an_embedder_search_is_full_text(database_url: str) -> None:
    with open_store(database_url, embedder="none") as store:
        store.memories.add("the espresso machine is broken")
        for mode in ("vector", "hybrid"):
            result = store.search("espresso", mode=mode)
            assert result.fallback == "no embedder is configured"
            assert [hit.retrieval_method for hit in result.hits] == ["text"]


def test_sqlite_vector_index_follows_other_writers(tmp_path) -> None:
    """Two stores on one file, as two processes: the searcher's in-memory vectors never
    return what the other deleted, and find what it added."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with open_store(url) as searcher, open_store(url) as writer:
        doomed = writer.memories.add("the staging cluster is on fire")
        kept = writer.contexts.add("runbook", "restart the staging cluster")

        def found() -> set[str]:
            hits = searcher.search("staging cluster", mode="vector", threshold=-1).hits
            return {hit.item.content for hit in hits}

        assert found() == {doomed.content, kept.content}
        writer.memories.delete(doomed.id)
        assert found() == {kept.content}
        added = writer.memories.add("the staging cluster is back")
        assert found() == {kept.content, added.content}
        chat = writer.conversations.create()
        writer.messages.append(chat.id, role="user", content="staging cluster status?")
        writer.conversations.delete(chat.id)  # cascaded delete of the message's vector
        assert found() == {kept.content, added.content}
