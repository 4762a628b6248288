"""Search through every interface and backend: scores, modes, filters, fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from ctxbase.db.vectors.base import DISTANCES, reference_scores
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.errors import InvalidInputError

TEXTS = [
    "the deploy pipeline failed on the staging cluster",
    "rotate the database password every ninety days",
    "the staging cluster runs three replicas",
    "lunch menu: soup and bread",
    "deploy to production after the staging checks pass",
]


@pytest.mark.parametrize("distance", DISTANCES)
def test_vector_scores_match_the_numpy_reference(api: Any, distance: str) -> None:
    units = [api.contexts.add(f"doc-{i}", text) for i, text in enumerate(TEXTS)]
    query = "staging cluster deploy"
    result = api.search(
        query, kinds=["context"], mode="vector", k=10, threshold=-1e9, distance=distance
    )
    embedder = HashEmbedder(64)
    expected = reference_scores(embedder.embed(TEXTS), embedder.embed([query])[0], distance)
    by_id = {unit.id: float(score) for unit, score in zip(units, expected, strict=True)}
    assert [hit.id for hit in result.hits] == sorted(by_id, key=lambda i: -by_id[i])
    for hit in result.hits:
        assert hit.retrieval_method == "vector"
        assert hit.score == pytest.approx(by_id[hit.id], abs=1e-5)
    assert result.fallback is None


def test_text_search_finds_exact_identifiers(api: Any) -> None:
    chat = api.conversations.create()
    api.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": "the parser crashed with error E4471 on invoice 12"},
            {"role": "assistant", "content": "invoices are parsed by parse_invoice_lines"},
            {"role": "user", "content": "the weather is nice"},
        ],
    )
    hits = api.search("what does E4471 mean?", mode="text").hits
    assert hits[0].item.content.startswith("the parser crashed") and hits[0].kind == "message"
    assert all(hit.retrieval_method == "text" for hit in hits)
    assert (
        api.search("parse_invoice_lines", mode="text")
        .hits[0]
        .item.content.startswith("invoices are parsed")
    )
    assert api.search("the of and", mode="text").hits == []  # stop words only


def test_hybrid_fuses_both_rankings(api: Any) -> None:
    for i, text in enumerate(TEXTS):
        api.contexts.add(f"doc-{i}", text)
    result = api.search("staging cluster", mode="hybrid", k=3)
    assert [hit.retrieval_method for hit in result.hits] == ["hybrid"] * 3
    top = result.hits[0]
    assert "staging cluster" in top.item.content
    assert {"vector_rank", "text_rank"} <= set(top.details)
    assert result.hits[0].score >= result.hits[1].score >= result.hits[2].score


def test_filters_and_kinds(api: Any) -> None:
    chat = api.conversations.create(agent_id="planner")
    other = api.conversations.create(agent_id="coder")
    api.messages.append(chat.id, role="user", content="deploy the staging cluster")
    api.messages.append(other.id, role="user", content="deploy the staging cluster now")
    api.contexts.add(
        "runbook",
        "deploy staging cluster runbook",
        source_type="document",
        metadata={"team": "ops"},
    )
    api.memories.add(
        "user deploys the staging cluster on fridays",
        user_id="u1",
        agent_id="planner",
        memory_type="fact",
    )
    query = "deploy staging cluster"

    def kinds_of(**options: Any) -> list[str]:
        return sorted(hit.kind for hit in api.search(query, mode="text", k=20, **options).hits)

    assert kinds_of() == ["context", "memory", "message", "message"]
    assert kinds_of(kinds=["message"]) == ["message", "message"]
    assert kinds_of(filters={"user_id": "u1"}) == ["memory"]
    assert kinds_of(filters={"source_type": "document"}) == ["context"]
    assert kinds_of(filters={"agent_id": "planner"}) == ["memory", "message"]
    assert kinds_of(filters={"conversation_id": str(other.id)}) == ["message"]
    assert kinds_of(filters={"memory_type": "episodic"}) == []
    assert kinds_of(filters={"metadata": {"team": "ops"}}) == ["context"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert kinds_of(filters={"created_after": future.isoformat()}) == []


def test_deleted_superseded_and_expired_items_are_never_returned(api: Any) -> None:
    old = api.contexts.add("notes", "kubernetes upgrade plan")
    api.contexts.update(old.id, content="kubernetes upgrade plan, revised")
    gone = api.memories.add("kubernetes upgrade happened")
    api.memories.add("kubernetes upgrade expired", expires_at=datetime.now(UTC) - timedelta(1))
    api.memories.delete(gone.id)
    for mode in ("text", "vector", "hybrid"):
        hits = api.search("kubernetes upgrade", mode=mode, threshold=-1e9).hits
        assert [hit.item.content for hit in hits] == ["kubernetes upgrade plan, revised"], mode


def test_memory_importance_boosts_and_hits_count_access(api: Any) -> None:
    low = api.memories.add("the user likes green tea", importance=0.0)
    high = api.memories.add("the user likes green tea!", importance=1.0)
    hits = api.search("user likes green tea", kinds=["memory"], mode="vector", threshold=0).hits
    assert [hit.id for hit in hits] == [high.id, low.id]
    assert hits[0].details["boost"] > hits[1].details["boost"]
    assert all(hit.item.access_count == 1 for hit in hits)
    assert api.memories.get(low.id).access_count == 2  # the search, then this read


def test_vector_threshold(api: Any) -> None:
    api.contexts.add("a", "staging cluster deploy")
    api.contexts.add("b", "lunch menu soup")
    assert len(api.search("staging cluster deploy", mode="vector").hits) == 1  # default 0.7
    assert len(api.search("staging cluster deploy", mode="vector", threshold=-1).hits) == 2


def test_bad_search_input(api: Any) -> None:
    for bad in (
        {"query": ""},
        {"query": "x", "k": 0},
        {"query": "x", "kinds": ["emails"]},
        {"query": "x", "mode": "psychic"},
        {"query": "x", "distance": "manhattan"},
        {"query": "x", "kinds": []},
    ):
        query = bad.pop("query")
        with pytest.raises(InvalidInputError):
            api.search(query, **bad)


def test_pending_vectors_fall_back_to_text(api: Any, store: Any) -> None:
    from ctxbase.store.embedding import Embeddings

    class Down(HashEmbedder):
        def embed(self, texts: list[str]) -> np.ndarray:
            from ctxbase.embeddings import EmbeddingError

            raise EmbeddingError("provider down")

    healthy = store.embeddings
    store.embeddings = Embeddings(store, Down(64))
    try:
        api.memories.add("the espresso machine is broken")  # stored, vector pending
        result = api.search("espresso machine", mode="vector")
        assert "embedding provider failed" in (result.fallback or "")
        assert [hit.retrieval_method for hit in result.hits] == ["text"]
    finally:
        store.embeddings = healthy
    result = api.search("espresso machine", mode="hybrid")
    assert result.fallback and "pending" in result.fallback
    assert [hit.retrieval_method for hit in result.hits] == ["text"]


def test_vector_filters_take_new_values_every_search(api: Any) -> None:
    """Vector legs compile one statement per shape of filters and reuse it: each search's
    own values must apply, and a selective filter must still fill k."""
    teams = ["ops", "web", "data"]
    for i in range(30):
        owner = None if i % 2 else "ann"
        api.contexts.add(
            f"doc-{i}",
            f"deploy staging cluster note {i}",
            metadata={"team": teams[i % 3], "owner": owner},
        )
    api.contexts.add("far", "lunch menu soup bread", metadata={"team": "kitchen"})

    def teams_of(k: int, metadata: dict[str, Any]) -> list[str]:
        hits = api.search(
            "deploy staging cluster",
            kinds=["context"],
            mode="vector",
            k=k,
            threshold=-1,
            filters={"metadata": metadata},
        ).hits
        return [hit.item.metadata["team"] for hit in hits]

    for team in teams:
        assert teams_of(20, {"team": team}) == [team] * 10
    assert teams_of(3, {"team": "kitchen"}) == ["kitchen"]  # found past 29 nearer ones
    assert len(teams_of(20, {"owner": None})) == 15
    assert teams_of(20, {"team": "ops", "owner": None}) == ["ops"] * 5
    assert teams_of(20, {"team": "web", "owner": "ann"}) == ["web"] * 5


def test_vector_filters_on_agents_time_and_expiry(api: Any) -> None:
    planner = api.conversations.create(agent_id="planner")
    coder = api.conversations.create(agent_id="coder")
    api.messages.append(planner.id, role="user", content="deploy the staging cluster")
    api.messages.append(coder.id, role="user", content="deploy the staging cluster now")
    api.memories.add("deploy the staging cluster on fridays", agent_id="planner")
    api.memories.add("deploy the staging cluster daily", agent_id="coder")
    api.memories.add(
        "deploy the staging cluster yesterday",
        agent_id="coder",
        expires_at=datetime.now(UTC) - timedelta(days=1),
    )

    def found(**filters: Any) -> list[tuple[str, str]]:
        hits = api.search(
            "deploy staging cluster", mode="vector", k=20, threshold=-1, filters=filters
        ).hits
        return sorted((hit.kind, hit.item.content) for hit in hits)

    assert found(agent_id="planner") == [
        ("memory", "deploy the staging cluster on fridays"),
        ("message", "deploy the staging cluster"),
    ]
    assert found(agent_id="coder") == [
        ("memory", "deploy the staging cluster daily"),
        ("message", "deploy the staging cluster now"),
    ]
    assert len(found(created_after=(datetime.now(UTC) - timedelta(hours=1)).isoformat())) == 4
    assert found(created_after=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []


def test_vector_mode_below_the_threshold_falls_back_to_text_and_says_so(api: Any) -> None:
    unit = api.contexts.add("deploy", "staging cluster deploy runbook")
    api.contexts.add("lunch", "lunch menu soup")
    assert api.search("staging cluster deploy", mode="vector").fallback is None  # a hit >= 0.7
    # Vectors are compared, none reaches 0.999: the hits are full text's, and it says so.
    result = api.search("cluster runbook", kinds=["context"], mode="vector", threshold=0.999)
    assert [(h.id, h.retrieval_method) for h in result.hits] == [(unit.id, "text")]
    assert result.fallback == "no vector hit reached the threshold 0.999"
    assert result.mode == "vector"
    nothing = api.search("zebra", kinds=["context"], mode="vector", threshold=0.999)
    assert nothing.hits == [] and nothing.fallback  # fell back, and full text found none
    hybrid = api.search("cluster runbook", kinds=["context"], mode="hybrid", threshold=0.999)
    assert [h.retrieval_method for h in hybrid.hits] == ["text"] and hybrid.fallback
    assert api.search("cluster runbook", kinds=["context"], mode="hybrid").fallback is None
