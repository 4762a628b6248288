"""The loop detector and the health score, on every backend, checked against plain
Python arithmetic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

import ctxbase
from ctxbase.db.schema import metadata
from ctxbase.store.quality_analysis import DEFAULT_HEALTH_WEIGHTS, DETECTOR
from tests.conftest import store_on
from tests.quality.helpers import chat

SORRY = "I am sorry, I cannot reach the billing system right now. Please try again later."
SORRY_AGAIN = "Sorry, I cannot reach the billing system right now. Please try again later!"
VARIED = [
    "Switch to Decimal and round once at the end; the totals then match the ledger.",
    "Here is the patch: total = sum(line.amount for line in lines).quantize(CENT).",
    "Run the tests again after applying the patch to confirm the fix.",
]


def _conversation(apologies: list[str]) -> list[tuple[str, str]]:
    """Questions and answers; the answers at positions 4, 6 and 8 are ``apologies``."""
    return [
        ("user", "Why does the invoice total drift?"),
        ("assistant", "Rounding happens per line instead of per invoice."),
        ("user", "Can you check the billing system?"),
        ("assistant", apologies[0]),
        ("user", "Please do."),
        ("assistant", apologies[1]),
        ("user", "Once more."),
        ("assistant", apologies[2]),
        ("user", SORRY),  # the same words from another role: not part of the loop
    ]


PLANTED = [SORRY, SORRY_AGAIN, SORRY]


def test_a_planted_loop_is_found_and_a_varied_conversation_is_not(store: ctxbase.Store) -> None:
    looping = chat(store, _conversation(PLANTED))
    found = store.quality.detect_loops(looping.id)
    (loop,) = found.loops
    assert loop.message_ids == [looping.messages[i].id for i in (3, 5, 7)]
    assert (loop.role, loop.occurrences, loop.first_position, loop.last_position) == (
        "assistant",
        3,
        4,
        8,
    )
    assert loop.pattern == SORRY and loop.method == "vector" and 0.9 <= loop.similarity <= 1
    assert (found.scanned, found.with_vectors, found.model) == (9, 9, store.embeddings.model)
    assert not found.saved and loop.loop_id is None
    assert store.quality.list_loops(looping.id).items == []  # nothing stored unless asked

    varied = chat(store, _conversation(VARIED))
    assert store.quality.detect_loops(varied.id).loops == []
    assert store.quality.detect_loops(varied.id, threshold=0.1, text_threshold=0.01).loops != []


def test_the_options_narrow_what_counts(store: ctxbase.Store) -> None:
    c = chat(store, _conversation(PLANTED))
    assert store.quality.detect_loops(c.id, min_occurrences=4).loops == []
    assert len(store.quality.detect_loops(c.id, min_occurrences=2).loops) == 1
    assert store.quality.detect_loops(c.id, role="user").loops == []
    assert store.quality.detect_loops(c.id, role="assistant").loops[0].occurrences == 3
    last_four = store.quality.detect_loops(c.id, window=4, min_occurrences=2)
    assert last_four.scanned == 4
    assert [(x.first_position, x.last_position) for x in last_four.loops] == [(6, 8)]
    assert store.quality.detect_loops(c.id, threshold=0.99, text_threshold=0.99).loops == []
    with pytest.raises(ctxbase.InvalidInputError, match="threshold"):
        store.quality.detect_loops(c.id, threshold=1.5)
    with pytest.raises(ctxbase.InvalidInputError, match="min_occurrences"):
        store.quality.detect_loops(c.id, min_occurrences=1)


def test_without_vectors_the_text_decides(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for store in store_on(backend, tmp_path, request, embedder=None):
        looping = chat(store, _conversation(PLANTED))
        found = store.quality.detect_loops(looping.id)
        assert (found.with_vectors, found.model) == (0, None)
        (loop,) = found.loops
        assert loop.method == "text" and loop.first_position == 4 and loop.occurrences == 3
        # Jaccard of word pairs: SORRY_AGAIN shares 12 of SORRY's 14 pairs, adding 0 new
        assert loop.similarity == pytest.approx(12 / 14, abs=1e-6)
        assert store.quality.detect_loops(chat(store, _conversation(VARIED)).id).loops == []


def test_a_turn_without_a_vector_is_compared_by_its_text(store: ctxbase.Store) -> None:
    c = chat(store, _conversation(PLANTED))
    embeddings = metadata.tables["embeddings"]
    with store.db.connect(write=True) as connection:
        connection.execute(delete(embeddings).where(embeddings.c.message_id == c.messages[5].id))
    found = store.quality.detect_loops(c.id)
    assert found.with_vectors == 8
    assert [(x.method, x.occurrences) for x in found.loops] == [("mixed", 3)]


def test_saving_replaces_what_an_earlier_detection_saved(store: ctxbase.Store) -> None:
    c = chat(store, _conversation(PLANTED))
    by_hand = store.quality.add_loop(c.id, pattern="mine", message_ids=[c.messages[0].id])
    first = store.quality.detect_loops(c.id, save=True)
    second = store.quality.detect_loops(c.id, save=True)
    stored = store.quality.list_loops(c.id).items
    assert [x.id for x in stored] == [by_hand.id, second.loops[0].loop_id]
    assert first.loops[0].loop_id != second.loops[0].loop_id
    saved = stored[1]
    assert saved.message_ids == second.loops[0].message_ids
    assert (saved.first_position, saved.last_position, saved.occurrences) == (4, 8, 3)
    assert saved.details["source"] == DETECTOR and saved.details["method"] == "vector"


T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_health_score_follows_the_documented_formula(store: ctxbase.Store) -> None:
    c = chat(store, [("user", "hi")])
    for metric, value, hours in [
        ("coherence", 0.1, 0),
        ("coherence", 0.9, 1),  # the latest coherence
        ("coherence", 0.2, -1),  # added last, measured earliest: not the latest
        ("relevance", 0.5, 0),
        ("accuracy", 1.7, 0),  # counted as 1
        ("unweighted", 0.0, 0),
    ]:
        store.quality.add_metric(
            c.id, metric=metric, value=value, measured_at=T0 + timedelta(hours=hours)
        )
    w = DEFAULT_HEALTH_WEIGHTS
    expected = (
        100
        * (w["coherence"] * 0.9 + w["relevance"] * 0.5 + w["accuracy"] * 1.0)
        / (w["coherence"] + w["relevance"] + w["accuracy"])  # consistency: never measured
    )
    report = store.quality.compute_health(c.id)
    assert report.exact == pytest.approx(expected)
    assert report.health_score == math.floor(expected + 0.5) == 81
    assert {x.metric: x.value for x in report.components} == {
        "coherence": 0.9,
        "relevance": 0.5,
        "accuracy": 1.7,
        "consistency": None,
    }
    assert {x.metric: x.score for x in report.components}["accuracy"] == 1.0
    assert not report.saved and store.conversations.get(c.id).health_score is None

    saved = store.quality.compute_health(c.id, save=True)
    assert saved.saved and store.conversations.get(c.id).health_score == 81
    assert [x.title for x in store.conversations.list(min_health=81).items] == ["quality"]
    custom = store.quality.compute_health(c.id, weights={"relevance": 3, "never": 5})
    assert (custom.health_score, custom.exact) == (50, 50.0)
    nothing = store.quality.compute_health(c.id, weights={"never": 1}, save=True)
    assert (nothing.health_score, nothing.exact, nothing.saved) == (None, None, False)
    assert store.conversations.get(c.id).health_score == 81  # left as it was


@pytest.mark.parametrize(("value", "score"), [(0.125, 13), (0.005, 1), (0.0049, 0), (-2, 0)])
def test_halves_round_up(store: ctxbase.Store, value: float, score: int) -> None:
    c = chat(store, [("user", "hi")])
    store.quality.add_metric(c.id, metric="a", value=value)
    assert store.quality.compute_health(c.id, weights={"a": 1}).health_score == score
