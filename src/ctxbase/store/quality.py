"""``store.quality``: a conversation's quality records.

Four kinds of record, each owned by a conversation and deleted with it (ON DELETE
CASCADE): a metric time series, contradictions between two of its messages, repetition
loops, and citations with their verification. A message a record names must be one of
the conversation's own: any other id, another project's included, is refused exactly as
one that does not exist. Lists run oldest first (metrics by ``measured_at``, the others
by ``created_at``), cursor-paginated.

The loop detector and the health score are in :mod:`ctxbase.store.quality_analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ctxbase.api.quality import CitationQuery, ContradictionQuery, LoopQuery, MetricQuery
from ctxbase.db.schema import utcnow
from ctxbase.errors import InvalidInputError
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
    LoopDetection,
    LoopDetectionIn,
    MessageRole,
    Page,
    QualityMetric,
    QualityMetricIn,
    RepetitionLoop,
    RepetitionLoopIn,
    Severity,
)
from ctxbase.store import quality_analysis
from ctxbase.store.base import DEFAULT_PAGE, DEFAULT_PROJECT, as_uuid, given, parse
from ctxbase.store.quality_records import (
    CITATIONS,
    CONTRADICTIONS,
    ID,
    LOOPS,
    METRICS,
    QualityRecords,
)
from ctxbase.store.strict import enforce


class Quality(QualityRecords):
    """``store.quality``."""

    # --- the metric time series ---

    def add_metric(
        self,
        conversation_id: ID,
        *,
        metric: str,
        value: float,
        details: dict[str, Any] | None = None,
        measured_at: datetime | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> QualityMetric:
        """One point of ``metric`` (``measured_at`` defaults to now)."""
        data = parse(QualityMetricIn, given(QualityMetricIn, locals()))
        self._check_json("details", data.details)
        row = data.model_dump()
        row["measured_at"] = data.measured_at or utcnow()
        return self._add(METRICS, conversation_id, project, row, {})

    def list_metrics(
        self,
        conversation_id: ID,
        *,
        metric: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Page[QualityMetric]:
        """Points by time measured, of one ``metric`` if given."""
        query = parse(MetricQuery, given(MetricQuery, {**locals(), "cursor": None}))
        equal = {"metric": query.metric}
        return self._list(METRICS, conversation_id, project, query, equal, cursor)

    def delete_metric(
        self, conversation_id: ID, metric_id: ID, *, project: str = DEFAULT_PROJECT
    ) -> None:
        self._delete(METRICS, conversation_id, metric_id, project)

    # --- contradictions ---

    def add_contradiction(
        self,
        conversation_id: ID,
        *,
        first_message_id: ID,
        second_message_id: ID,
        description: str = "",
        severity: Severity = "medium",
        status: ContradictionStatus = "open",
        details: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Contradiction:
        """Two of the conversation's messages that contradict each other."""
        data = parse(ContradictionIn, given(ContradictionIn, locals()))
        if data.first_message_id == data.second_message_id:
            raise InvalidInputError(
                "first_message_id and second_message_id must differ",
                details=[
                    {"location": ["second_message_id"], "message": "same message", "type": "value"}
                ],
            )
        self._check_text("description", data.description)
        self._check_json("details", data.details)
        row = data.model_dump()
        row["resolved_at"] = None if data.status == "open" else utcnow()
        links = {f: [row[f]] for f in ("first_message_id", "second_message_id")}
        return self._add(CONTRADICTIONS, conversation_id, project, row, links)

    def list_contradictions(
        self,
        conversation_id: ID,
        *,
        status: ContradictionStatus | None = None,
        severity: Severity | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Page[Contradiction]:
        query = parse(ContradictionQuery, given(ContradictionQuery, {**locals(), "cursor": None}))
        equal = {"status": query.status, "severity": query.severity}
        return self._list(CONTRADICTIONS, conversation_id, project, query, equal, cursor)

    def update_contradiction(
        self,
        conversation_id: ID,
        contradiction_id: ID,
        *,
        status: ContradictionStatus | None = None,
        severity: Severity | None = None,
        description: str | None = None,
        details: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Contradiction:
        """Change the given fields. Becoming resolved or dismissed sets ``resolved_at``;
        reopening clears it."""
        patch = parse(ContradictionPatch, given(ContradictionPatch, locals()))
        self._check_text("description", patch.description)
        self._check_json("details", patch.details)
        changes = patch.model_dump(exclude_none=True)

        def stamp(current: Mapping[str, Any]) -> dict[str, Any]:
            if patch.status is None or patch.status == current["status"]:
                return {}
            return {"resolved_at": None if patch.status == "open" else utcnow()}

        return self._update(
            CONTRADICTIONS, conversation_id, contradiction_id, project, changes, stamp
        )

    def delete_contradiction(
        self, conversation_id: ID, contradiction_id: ID, *, project: str = DEFAULT_PROJECT
    ) -> None:
        self._delete(CONTRADICTIONS, conversation_id, contradiction_id, project)

    # --- repetition loops ---

    def add_loop(
        self,
        conversation_id: ID,
        *,
        pattern: str,
        message_ids: Sequence[ID],
        occurrences: int | None = None,
        details: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> RepetitionLoop:
        """A pattern the conversation repeats in ``message_ids``: its positions are those
        of its first and last message; ``occurrences`` defaults to one per message."""
        data = parse(RepetitionLoopIn, given(RepetitionLoopIn, locals()))
        if len(set(data.message_ids)) != len(data.message_ids):
            raise InvalidInputError(
                "message_ids must not repeat an id",
                details=[{"location": ["message_ids"], "message": "repeated id", "type": "value"}],
            )
        self._check_text("pattern", data.pattern)
        self._check_json("details", data.details)
        row = data.model_dump()
        if data.occurrences is None:
            row["occurrences"] = len(data.message_ids)
        return self._add(LOOPS, conversation_id, project, row, {"message_ids": data.message_ids})

    def list_loops(
        self,
        conversation_id: ID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Page[RepetitionLoop]:
        query = parse(LoopQuery, given(LoopQuery, {**locals(), "cursor": None}))
        return self._list(LOOPS, conversation_id, project, query, {}, cursor)

    def delete_loop(
        self, conversation_id: ID, loop_id: ID, *, project: str = DEFAULT_PROJECT
    ) -> None:
        self._delete(LOOPS, conversation_id, loop_id, project)

    def detect_loops(
        self,
        conversation_id: ID,
        *,
        threshold: float = 0.9,
        text_threshold: float = 0.8,
        min_occurrences: int = 3,
        role: MessageRole | None = None,
        window: int = 500,
        save: bool = False,
        project: str = DEFAULT_PROJECT,
    ) -> LoopDetection:
        """Near-duplicate turns of one role among the last ``window`` messages, grouped
        into loops of at least ``min_occurrences`` turns. Two turns repeat when their
        stored vectors (of the active model) have a cosine similarity of ``threshold`` or
        more, or, when either has none, their normalised text a similarity of
        ``text_threshold`` or more (Jaccard over word pairs). ``save=True`` stores the
        loops, replacing those an earlier detection saved; loops added by hand stay."""
        options = parse(LoopDetectionIn, given(LoopDetectionIn, locals()))
        return quality_analysis.detect_loops(
            self, as_uuid(conversation_id, "conversation"), options, project
        )

    # --- citations ---

    def add_citation(
        self,
        conversation_id: ID,
        *,
        message_id: ID,
        source_reference: str,
        quoted_text: str | None = None,
        status: CitationStatus = "pending",
        note: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Citation:
        """A source the message ``message_id`` cites (a status other than ``pending`` sets
        ``verified_at``)."""
        data = parse(CitationIn, given(CitationIn, locals()))
        for field in ("source_reference", "quoted_text", "note"):
            self._check_text(field, getattr(data, field))
        row = data.model_dump()
        row["verified_at"] = None if data.status == "pending" else utcnow()
        return self._add(
            CITATIONS, conversation_id, project, row, {"message_id": [data.message_id]}
        )

    def list_citations(
        self,
        conversation_id: ID,
        *,
        status: CitationStatus | None = None,
        message_id: ID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Page[Citation]:
        query = parse(CitationQuery, given(CitationQuery, {**locals(), "cursor": None}))
        equal = {"status": query.status, "message_id": query.message_id}
        return self._list(CITATIONS, conversation_id, project, query, equal, cursor)

    def update_citation(
        self,
        conversation_id: ID,
        citation_id: ID,
        *,
        status: CitationStatus | None = None,
        note: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Citation:
        """Record a verification: a new status other than ``pending`` sets ``verified_at``
        to now; back to ``pending`` clears it."""
        patch = parse(CitationPatch, given(CitationPatch, locals()))
        self._check_text("note", patch.note)
        changes = patch.model_dump(exclude_none=True)

        def stamp(current: Mapping[str, Any]) -> dict[str, Any]:
            if patch.status is None or patch.status == current["status"]:
                return {}
            return {"verified_at": None if patch.status == "pending" else utcnow()}

        return self._update(CITATIONS, conversation_id, citation_id, project, changes, stamp)

    def delete_citation(
        self, conversation_id: ID, citation_id: ID, *, project: str = DEFAULT_PROJECT
    ) -> None:
        self._delete(CITATIONS, conversation_id, citation_id, project)

    # --- the health score ---

    def compute_health(
        self,
        conversation_id: ID,
        *,
        save: bool = False,
        weights: dict[str, float] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> HealthReport:
        """The health score from the latest value of each weighted metric (see
        :func:`ctxbase.store.quality_analysis.health_score` for the formula);
        ``save=True`` writes it to the conversation's ``health_score``."""
        options = parse(HealthIn, given(HealthIn, locals()))
        return quality_analysis.compute_health(
            self, as_uuid(conversation_id, "conversation"), options, project
        )


enforce(Quality, "quality")  # unknown arguments are refused by name
