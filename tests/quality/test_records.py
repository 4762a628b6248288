"""Quality records, the same through the Store on every backend and the Client over HTTP:
add, list with each filter and by pages, change a status, delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctxbase.errors import InvalidCursorError, InvalidInputError, NotFoundError
from tests.contract import conftest as contract
from tests.quality.helpers import chat

# The contract targets (store-* on every backend, http-* through a live server).
target, backend, http_server, api = (
    contract.target,
    contract.backend,
    contract.http_server,
    contract.api,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TURNS = [("user", "What is the VAT?"), ("assistant", "20% on the net."), ("assistant", "None.")]


def _walk(list_page: Any, limit: int) -> list[Any]:
    """Every item of a list, following its cursors."""
    items, cursor = [], None
    while True:
        page = list_page(limit=limit, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def test_metric_series_by_time_with_filters_and_pages(api: Any) -> None:
    c = chat(api, TURNS)
    points = [
        api.quality.add_metric(c.id, metric=name, value=value, measured_at=T0 + timedelta(hours=h))
        for name, value, h in [
            ("coherence", 0.8, 2),
            ("relevance", 0.6, 1),
            ("coherence", 0.7, 0),  # added last, measured first
            ("coherence", 0.9, 3),
        ]
    ]
    now = api.quality.add_metric(c.id, metric="relevance", value=0.5, details={"judge": "r2"})
    assert now.details == {"judge": "r2"} and now.measured_at > T0 + timedelta(days=1)
    everything = api.quality.list_metrics(c.id).items
    assert [p.value for p in everything] == [0.7, 0.6, 0.8, 0.9, 0.5]  # by time measured
    assert api.quality.list_metrics(c.id, metric="coherence").items == [
        points[2],
        points[0],
        points[3],
    ]
    window = api.quality.list_metrics(
        c.id, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)
    )
    assert [p.value for p in window.items] == [0.6, 0.8]  # since inclusive, until exclusive
    assert _walk(lambda **page: api.quality.list_metrics(c.id, **page), 2) == everything
    api.quality.delete_metric(c.id, points[0].id)
    assert points[0] not in api.quality.list_metrics(c.id).items
    with pytest.raises(NotFoundError):
        api.quality.delete_metric(c.id, points[0].id)
    with pytest.raises(InvalidInputError, match="value"):
        api.quality.add_metric(c.id, metric="coherence", value=float("nan"))


def test_contradictions_change_status_and_filter(api: Any) -> None:
    c = chat(api, TURNS)
    first, second, third = c.messages
    added = api.quality.add_contradiction(
        c.id,
        first_message_id=second.id,
        second_message_id=third.id,
        description="20% or none",
        severity="high",
        details={"detector": "nli"},
    )
    assert (added.status, added.resolved_at, added.severity) == ("open", None, "high")
    low = api.quality.add_contradiction(c.id, first_message_id=first.id, second_message_id=third.id)
    assert (low.severity, low.description, low.details) == ("medium", "", {})

    resolved = api.quality.update_contradiction(c.id, added.id, status="resolved")
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.updated_at >= added.updated_at and resolved.description == "20% or none"
    again = api.quality.update_contradiction(c.id, added.id, description="VAT rate")
    assert again.resolved_at == resolved.resolved_at  # the status did not change
    dismissed = api.quality.update_contradiction(c.id, low.id, status="dismissed")
    assert dismissed.resolved_at is not None
    reopened = api.quality.update_contradiction(c.id, low.id, status="open", severity="low")
    assert (reopened.status, reopened.severity, reopened.resolved_at) == ("open", "low", None)

    assert [x.id for x in api.quality.list_contradictions(c.id, status="open").items] == [low.id]
    assert [x.id for x in api.quality.list_contradictions(c.id, severity="high").items] == [
        added.id
    ]
    assert api.quality.list_contradictions(c.id, status="dismissed").items == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert api.quality.list_contradictions(c.id, since=later).items == []
    assert len(api.quality.list_contradictions(c.id, until=later).items) == 2
    with pytest.raises(InvalidInputError, match="status"):
        api.quality.update_contradiction(c.id, low.id, status="closed")
    with pytest.raises(InvalidInputError):
        api.quality.add_contradiction(c.id, first_message_id=first.id, second_message_id=first.id)
    api.quality.delete_contradiction(c.id, low.id)
    assert [x.id for x in api.quality.list_contradictions(c.id).items] == [added.id]
    with pytest.raises(NotFoundError):
        api.quality.update_contradiction(c.id, low.id, status="resolved")


def test_loops_take_their_positions_from_their_messages(api: Any) -> None:
    c = chat(api, [("assistant", f"try {i}") for i in range(5)])
    ids = [m.id for m in c.messages]
    loop = api.quality.add_loop(c.id, pattern="try again", message_ids=[ids[3], ids[1], ids[4]])
    assert loop.message_ids == [ids[1], ids[3], ids[4]]  # in position order
    assert (loop.first_position, loop.last_position, loop.occurrences) == (2, 5, 3)
    pair = api.quality.add_loop(c.id, pattern="A then B", message_ids=ids[:4], occurrences=2)
    assert (pair.occurrences, pair.first_position, pair.last_position) == (2, 1, 4)
    assert _walk(lambda **page: api.quality.list_loops(c.id, **page), 1) == [loop, pair]
    with pytest.raises(InvalidInputError, match="message_ids"):
        api.quality.add_loop(c.id, pattern="p", message_ids=[ids[0], ids[0]])
    with pytest.raises(InvalidInputError, match="message_ids"):
        api.quality.add_loop(c.id, pattern="p", message_ids=[])
    api.quality.delete_loop(c.id, loop.id)
    assert api.quality.list_loops(c.id).items == [pair]


def test_citations_record_their_verification(api: Any) -> None:
    c = chat(api, TURNS)
    answer = c.messages[1]
    cited = api.quality.add_citation(
        c.id,
        message_id=answer.id,
        source_reference="https://example.com/vat#4",
        quoted_text="20% on the net amount",
    )
    assert (cited.status, cited.verified_at, cited.note) == ("pending", None, None)
    other = api.quality.add_citation(
        c.id, message_id=c.messages[2].id, source_reference="doc:12", status="unverifiable"
    )
    assert other.verified_at is not None

    verified = api.quality.update_citation(c.id, cited.id, status="verified", note="verbatim")
    assert (verified.status, verified.note) == ("verified", "verbatim")
    assert verified.verified_at is not None and verified.quoted_text == cited.quoted_text
    failed = api.quality.update_citation(c.id, cited.id, status="failed")
    assert failed.verified_at >= verified.verified_at and failed.note == "verbatim"
    back = api.quality.update_citation(c.id, cited.id, status="pending")
    assert back.verified_at is None

    assert [x.id for x in api.quality.list_citations(c.id, status="pending").items] == [cited.id]
    assert [x.id for x in api.quality.list_citations(c.id, message_id=answer.id).items] == [
        cited.id
    ]
    assert api.quality.list_citations(c.id, status="verified").items == []
    api.quality.delete_citation(c.id, other.id)
    with pytest.raises(NotFoundError):
        api.quality.delete_citation(c.id, other.id)
    with pytest.raises(InvalidInputError, match="zzz"):
        api.quality.update_citation(c.id, cited.id, zzz=1)


def test_records_live_in_their_conversation_and_project(api: Any) -> None:
    c, other = chat(api, TURNS), chat(api, TURNS)
    theirs = other.messages[0].id
    point = api.quality.add_metric(c.id, metric="m", value=1)
    # another conversation's message, or one that does not exist: the same refusal
    refused = []
    for message_id in (theirs, uuid.uuid4()):
        with pytest.raises(InvalidInputError) as error:
            api.quality.add_citation(c.id, message_id=message_id, source_reference="s")
        refused.append((str(error.value).replace(str(message_id), "?"), error.value.details))
        with pytest.raises(InvalidInputError, match="second_message_id"):
            api.quality.add_contradiction(
                c.id, first_message_id=c.messages[0].id, second_message_id=message_id
            )
        with pytest.raises(InvalidInputError, match="message_ids"):
            api.quality.add_loop(c.id, pattern="p", message_ids=[c.messages[0].id, message_id])
    assert refused[0] == refused[1] and "message_id" in refused[0][0]
    # a record is reached only through its own conversation
    with pytest.raises(NotFoundError):
        api.quality.delete_metric(other.id, point.id)
    with pytest.raises(NotFoundError):
        api.quality.list_metrics(uuid.uuid4())
    with pytest.raises(NotFoundError):
        api.quality.add_metric(uuid.uuid4(), metric="m", value=1)
    api.projects.create("elsewhere")
    with pytest.raises(NotFoundError):
        api.quality.list_metrics(c.id, project="elsewhere")
    far = chat(api, TURNS, project="elsewhere")
    with pytest.raises(InvalidInputError):
        api.quality.add_citation(c.id, message_id=far.messages[0].id, source_reference="s")
    api.quality.add_metric(other.id, metric="m", value=1)
    api.quality.add_metric(other.id, metric="m", value=2)
    cursor = api.quality.list_metrics(other.id, limit=1).next_cursor
    with pytest.raises(InvalidCursorError):  # a cursor of another conversation's list
        api.quality.list_metrics(c.id, cursor=cursor)
    assert api.quality.list_citations(c.id).items == []


def test_conversation_lists_filter_on_health(api: Any) -> None:
    scores = [None, 10, 49, 50, 80, 100]
    made = []
    for score in scores:
        made.append(api.conversations.create(title=str(score)))
        if score is not None:
            api.conversations.update(made[-1].id, health_score=score)

    def titles(**filters: Any) -> list[str]:
        return sorted(c.title for c in api.conversations.list(**filters).items)

    assert titles(max_health=49) == ["10", "49"]  # "below 50"
    assert titles(min_health=50) == ["100", "50", "80"]
    assert titles(min_health=49, max_health=80) == ["49", "50", "80"]
    assert titles(min_health=90, max_health=10) == []
    assert len(titles()) == 6  # no filter: unscored ones too
    with pytest.raises(InvalidInputError, match="min_health"):
        api.conversations.list(min_health=101)
    with pytest.raises(InvalidInputError, match="max_health"):
        api.conversations.list(max_health=-1)


def test_detector_and_health_through_every_interface(api: Any) -> None:
    c = chat(api, [("assistant", "Let me check the invoice again.")] * 3 + [("user", "stop")])
    found = api.quality.detect_loops(c.id, save=True)
    assert [loop.message_ids for loop in found.loops] == [[m.id for m in c.messages[:3]]]
    assert found.saved and found.loops[0].loop_id is not None
    assert [loop.id for loop in api.quality.list_loops(c.id).items] == [found.loops[0].loop_id]
    api.quality.add_metric(c.id, metric="coherence", value=0.5)
    report = api.quality.compute_health(c.id, save=True, weights={"coherence": 2})
    assert (report.health_score, report.saved) == (50, True)
    assert api.conversations.get(c.id).health_score == 50
    with pytest.raises(InvalidInputError, match="weights"):
        api.quality.compute_health(c.id, weights={"coherence": 0})
