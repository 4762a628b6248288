"""Searches bounded by a time expression (``filters.during``), resolved against the
items' own time, and hits that explain their rank; every interface and backend."""

from __future__ import annotations

from typing import Any

import pytest

from ctxbase.errors import InvalidInputError

#: A conversation of May 2023, imported with its times: Monday 22, Tuesday 23, Thursday 25.
TURNS = [
    ("2023-05-15T10:00:00Z", "we decided to keep the monolith for now"),
    ("2023-05-22T10:00:00Z", "we decided to use mysql for the reports"),
    ("2023-05-23T16:30:00Z", "we decided to move the reports to postgres"),
    ("2023-05-25T09:00:00Z", "what did we decide about the reports?"),
]


def _conversation(api: Any) -> str:
    rows: list[dict[str, Any]] = [{"kind": "conversation", "id": "may"}]
    rows += [
        {
            "kind": "message",
            "conversation_id": "may",
            "role": "user",
            "content": text,
            "created_at": at,
        }
        for at, text in TURNS
    ]
    return str(api.imports.rows(rows).ids["conversation"]["may"])


def _found(api: Any, chat: str, **filters: Any) -> list[str]:
    result = api.search(
        "we decided", kinds=["message"], filters={"conversation_id": chat, **filters}
    )
    return sorted(hit.item.content for hit in result.hits)


def test_relative_times_count_back_from_the_conversations_own_time(api: Any) -> None:
    chat = _conversation(api)
    # The newest turn is Thursday 25 May 2023: "last Tuesday" is the 23rd, not a day of
    # the wall clock's week.
    assert _found(api, chat, during="last Tuesday") == [TURNS[2][1]]
    assert _found(api, chat, during="3 days ago") == [TURNS[1][1]]
    assert _found(api, chat, during="last week") == [TURNS[0][1]]
    assert len(_found(api, chat, during="May 2023")) == 4
    assert _found(api, chat, during="2023-05-22") == [TURNS[1][1]]
    assert _found(api, chat, during="yesterday", time_anchor="2023-05-23T08:00:00Z") == [
        TURNS[1][1]
    ]
    # with created_after / created_before, the narrower bound holds
    assert _found(api, chat, during="May 2023", created_after="2023-05-23T00:00:00Z") == sorted(
        t for _, t in TURNS[2:]
    )
    assert _found(api, chat, during="June 2023") == []


def test_a_time_that_cannot_be_read_is_refused_by_name(api: Any) -> None:
    chat = _conversation(api)
    with pytest.raises(InvalidInputError, match=r"filters\.during"):
        _found(api, chat, during="when the moon was blue")


def test_hybrid_hits_explain_their_rank(api: Any) -> None:
    chat = _conversation(api)
    result = api.search("postgres reports", kinds=["message"], filters={"conversation_id": chat})
    rrf_k = 10  # the default CTXBASE_HYBRID_RRF_K, both weights 1
    for hit in result.hits:
        details, fused = hit.details, 0.0
        for leg in ("vector", "text"):
            if f"{leg}_rank" in details:
                assert details[f"{leg}_rank"] >= 1
                fused += 1 / (rrf_k + details[f"{leg}_rank"])
        assert details["fused_score"] == pytest.approx(fused) and fused > 0
        assert hit.score == pytest.approx(fused)
    (postgres,) = [h for h in result.hits if "postgres" in h.item.content]
    assert postgres.details["text_rank"] == 1 and postgres.details["text_score"] > 0
    assert -1 <= postgres.details["vector_score"] <= 1
