"""Retrieval on a real long conversation with the real local model: the gains measured by
``benchmarks/retrieval.py`` (docs/benchmarks.md), pinned on one of its conversations.

One conversation of the benchmark's development split (19 sessions, 369 turns, 105
questions labelled with the turns that answer them), searched within itself as an agent
recalls what was said. Hybrid search must beat full text alone and vectors alone by a
clear margin (embedding each message without the turns before it loses that margin).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from benchmarks.retrieval import Conversation, Scores, ctxbase_rankers, load

import ctxbase
from tests.conftest import open_store

CONVERSATION = "conv-30"


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    (found,) = [c for c in load("dev") if c.id == CONVERSATION]
    return found


def _recall(store: ctxbase.Store, conversation: Conversation) -> dict[str, float]:
    recall = {}
    for mode, rank in ctxbase_rankers(store, [conversation]).items():
        scores = Scores()
        for question in conversation.questions:
            scores.add(rank(conversation, question), question.evidence)
        recall[mode] = scores.recall10 / scores.count
    return recall


@pytest.fixture
def measured(persistent_database_url: str, conversation: Conversation) -> Iterator[Any]:
    def measure() -> dict[str, float]:
        with open_store(persistent_database_url, embedder="local") as store:
            return _recall(store, conversation)

    yield measure


@pytest.mark.model
def test_hybrid_beats_text_and_vectors_by_a_clear_margin(measured: Any) -> None:
    # Measured: hybrid 0.75, text 0.63 (SQLite) and 0.65 (PostgreSQL), vectors 0.46.
    # Messages embedded alone give hybrid below text.
    recall = measured()
    assert recall["hybrid"] >= recall["text"] + 0.07, recall
    assert recall["hybrid"] >= recall["vector"] + 0.15, recall
    assert recall["hybrid"] >= 0.72, recall
