"""Subscriptions matched by meaning: an agent's needs in words, against each event's text."""

from __future__ import annotations

import pytest

import ctxbase
from ctxbase.events.matching import type_matches
from tests.conftest import open_store

NEEDS = ["changes to the API schema", "the user's billing problems"]
EVENTS = [
    ("api.changed", {"summary": "GET /users now returns an email field; id is now user_id"}),
    ("chat.message", {"text": "Good morning! How was your weekend?"}),
    ("support.ticket", {"text": "Customer says their credit card was charged twice this month"}),
    ("deploy.finished", {"service": "frontend", "version": "2.3.1"}),
    ("weather", {"text": "It will rain tomorrow in Paris"}),
]


@pytest.fixture
def model_store(database_url: str) -> ctxbase.Store:
    with open_store(database_url, embedder="local") as store:
        yield store


@pytest.mark.model
def test_needs_match_by_meaning(model_store: ctxbase.Store) -> None:
    sub = model_store.subscriptions.create(agent_id="frontend", needs=NEEDS)
    deploys = model_store.subscriptions.create(
        agent_id="ops", needs=NEEDS, event_types=["deploy.*"]
    )
    model_store.events.append_many([{"event_type": t, "data": d} for t, d in EVENTS])
    assert [e.event_type for e in model_store.subscriptions.pending(sub.id).items] == [
        "api.changed",
        "support.ticket",
    ]
    # Types or needs: either one brings an event.
    assert [e.event_type for e in model_store.subscriptions.pending(deploys.id).items] == [
        "api.changed",
        "support.ticket",
        "deploy.finished",
    ]
    strict = model_store.subscriptions.create(
        agent_id="x", needs=NEEDS, threshold=0.9, start_after=0
    )
    assert model_store.subscriptions.pending(strict.id).items == []


def test_without_an_embedder_needs_match_by_words(database_url: str) -> None:
    with open_store(database_url, embedder="none") as store:
        sub = store.subscriptions.create(agent_id="a", needs=["invoice totals drift"])
        store.events.append("billing", {"text": "The invoice totals are wrong again"})
        store.events.append("chat", {"text": "hello there"})
        assert [e.sequence for e in store.subscriptions.pending(sub.id).items] == [1]


def test_type_patterns() -> None:
    assert type_matches(["deploy.*"], "deploy.done")
    assert not type_matches(["deploy.*"], "deployment")
    assert type_matches(["*"], "anything")
    assert type_matches(["a.b"], "a.b") and not type_matches(["a.b"], "a.bc")
