"""Declarations of the conversation quality operations (``store.quality``): a metric time
series, contradictions, repetition loops and citations under
``/projects/{project}/conversations/{conversation_id}/quality``, the loop detector and
the health score."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from ctxbase.api.queries import Cursor, Limit
from ctxbase.api.spec import Arg, Operation
from ctxbase.records import (
    Citation,
    CitationIn,
    CitationPatch,
    CitationStatus,
    Contradiction,
    ContradictionIn,
    ContradictionPatch,
    ContradictionStatus,
    HealthIn,
    HealthReport,
    Input,
    LoopDetection,
    LoopDetectionIn,
    Page,
    QualityMetric,
    QualityMetricIn,
    RepetitionLoop,
    RepetitionLoopIn,
    Severity,
    Text,
    Timestamp,
)

ID = uuid.UUID | str
Q = "/projects/{project}/conversations/{conversation_id}/quality"
CONVERSATION = Arg("conversation_id", ID)

#: Metrics are filtered by ``measured_at``, the other records by ``created_at``.
Since = Annotated[Timestamp | None, Field(description="Only records at or after this time.")]
Until = Annotated[Timestamp | None, Field(description="Only records before this time.")]


def _record(name: str) -> Arg:
    """The id of one record in the path: ``{record_id}``, named ``name`` in Python."""
    return Arg(name, ID, wire_name="record_id")


class MetricQuery(Input):
    metric: Annotated[Text, Field(max_length=100)] | None = None
    since: Since = None
    until: Until = None
    limit: Limit = 50
    cursor: Cursor = None


class ContradictionQuery(Input):
    status: ContradictionStatus | None = None
    severity: Severity | None = None
    since: Since = None
    until: Until = None
    limit: Limit = 50
    cursor: Cursor = None


class LoopQuery(Input):
    since: Since = None
    until: Until = None
    limit: Limit = 50
    cursor: Cursor = None


class CitationQuery(Input):
    status: CitationStatus | None = None
    message_id: uuid.UUID | None = None
    since: Since = None
    until: Until = None
    limit: Limit = 50
    cursor: Cursor = None


# A table, one operation per entry, wrapped by hand rather than by the formatter.
# fmt: off
QUALITY_OPERATIONS = (
    # --- the metric time series ---
    Operation("quality.add_metric", "POST", f"{Q}/metrics", "write",
        "Record one point of a quality metric", result=QualityMetric, body=QualityMetricIn,
        args=(CONVERSATION,), status=201),
    Operation("quality.list_metrics", "GET", f"{Q}/metrics", "read",
        "The metric time series, by time measured", result=Page[QualityMetric],
        query=MetricQuery, args=(CONVERSATION,)),
    Operation("quality.delete_metric", "DELETE", f"{Q}/metrics/{{record_id}}", "write",
        "Delete one metric point", args=(CONVERSATION, _record("metric_id")), status=204),
    # --- contradictions ---
    Operation("quality.add_contradiction", "POST", f"{Q}/contradictions", "write",
        "Record two messages of the conversation that contradict each other",
        result=Contradiction, body=ContradictionIn, args=(CONVERSATION,), status=201),
    Operation("quality.list_contradictions", "GET", f"{Q}/contradictions", "read",
        "Contradictions, oldest first", result=Page[Contradiction], query=ContradictionQuery,
        args=(CONVERSATION,)),
    Operation("quality.update_contradiction", "PATCH", f"{Q}/contradictions/{{record_id}}",
        "write", "Change a contradiction's status (resolved or dismissed sets resolved_at)",
        result=Contradiction, body=ContradictionPatch,
        args=(CONVERSATION, _record("contradiction_id")),
        example={"status": "resolved", "details": {"by": "reviewer-2"}}),
    Operation("quality.delete_contradiction", "DELETE", f"{Q}/contradictions/{{record_id}}",
        "write", "Delete a contradiction", args=(CONVERSATION, _record("contradiction_id")),
        status=204),
    # --- repetition loops ---
    Operation("quality.add_loop", "POST", f"{Q}/loops", "write",
        "Record a repetition loop (positions come from its messages)", result=RepetitionLoop,
        body=RepetitionLoopIn, args=(CONVERSATION,), status=201),
    Operation("quality.list_loops", "GET", f"{Q}/loops", "read", "Repetition loops, oldest first",
        result=Page[RepetitionLoop], query=LoopQuery, args=(CONVERSATION,)),
    Operation("quality.delete_loop", "DELETE", f"{Q}/loops/{{record_id}}", "write",
        "Delete a repetition loop", args=(CONVERSATION, _record("loop_id")), status=204),
    Operation("quality.detect_loops", "POST", f"{Q}/loops/detect", "write",
        "Find near-duplicate turns of one role (stored vectors, else normalised text); "
        "`save` stores them", result=LoopDetection, body=LoopDetectionIn, args=(CONVERSATION,)),
    # --- citations ---
    Operation("quality.add_citation", "POST", f"{Q}/citations", "write",
        "Record a source a message cites", result=Citation, body=CitationIn,
        args=(CONVERSATION,), status=201),
    Operation("quality.list_citations", "GET", f"{Q}/citations", "read",
        "Citations, oldest first", result=Page[Citation], query=CitationQuery,
        args=(CONVERSATION,)),
    Operation("quality.update_citation", "PATCH", f"{Q}/citations/{{record_id}}", "write",
        "Record a citation's verification (a status other than pending sets verified_at)",
        result=Citation, body=CitationPatch, args=(CONVERSATION, _record("citation_id")),
        example={"status": "verified", "note": "Quoted verbatim from section 4"}),
    Operation("quality.delete_citation", "DELETE", f"{Q}/citations/{{record_id}}", "write",
        "Delete a citation", args=(CONVERSATION, _record("citation_id")), status=204),
    # --- the health score ---
    Operation("quality.compute_health", "POST", f"{Q}/health", "write",
        "The health score from the latest metrics and their weights; `save` writes it to "
        "the conversation", result=HealthReport, body=HealthIn, args=(CONVERSATION,)),
)
# fmt: on
