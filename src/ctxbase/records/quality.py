"""Records of a conversation's quality: a metric time series, contradictions, repetition
loops and citations (each owned by its conversation and deleted with it), their inputs,
and the reports of the loop detector and the health score."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ctxbase.records.values import (
    INT32_MAX,
    Input,
    JSONObject,
    MessageRole,
    Record,
    Text,
    Timestamp,
)

Severity = Literal["low", "medium", "high", "critical"]
ContradictionStatus = Literal["open", "resolved", "dismissed"]
CitationStatus = Literal["pending", "verified", "failed", "unverifiable"]
MetricName = Annotated[Text, Field(min_length=1, max_length=100)]
#: A number both backends store: no NaN or infinity.
Finite = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]

_SAMPLE_MESSAGE = "0190a5e2-7c1d-7a3e-9f4b-2d6c8e1a3b5f"
_OTHER_MESSAGE = "0190a5e2-7c1d-7a3e-9f4b-2d6c8e1a3b60"

# --- the metric time series ---------------------------------------------------------------


class QualityMetric(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    conversation_id: uuid.UUID
    metric: str
    value: float
    details: dict[str, Any]
    measured_at: Timestamp
    created_at: Timestamp


class QualityMetricIn(Input):
    metric: MetricName
    value: Finite
    details: JSONObject = Field(default_factory=dict)
    measured_at: Timestamp | None = Field(None, description="When it was measured (now).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"metric": "coherence", "value": 0.82, "details": {"judge": "rubric-v2"}}]
        }
    )


# --- contradictions -----------------------------------------------------------------------


class Contradiction(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    conversation_id: uuid.UUID
    first_message_id: uuid.UUID
    second_message_id: uuid.UUID
    description: str
    severity: Severity
    status: ContradictionStatus
    details: dict[str, Any]
    resolved_at: Timestamp | None = Field(
        description="When the status last became resolved or dismissed; None while open."
    )
    created_at: Timestamp
    updated_at: Timestamp


class ContradictionIn(Input):
    first_message_id: uuid.UUID
    second_message_id: uuid.UUID
    description: Text = ""
    severity: Severity = "medium"
    status: ContradictionStatus = "open"
    details: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "first_message_id": _SAMPLE_MESSAGE,
                    "second_message_id": _OTHER_MESSAGE,
                    "description": "Says the total includes VAT, then that it does not",
                    "severity": "high",
                }
            ]
        }
    )


class ContradictionPatch(Input):
    status: ContradictionStatus | None = None
    severity: Severity | None = None
    description: Text | None = None
    details: JSONObject | None = None


# --- repetition loops ---------------------------------------------------------------------


class RepetitionLoop(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    conversation_id: uuid.UUID
    pattern: str = Field(description="What repeats: an excerpt of a representative message.")
    message_ids: list[uuid.UUID] = Field(description="The repeating messages, in order.")
    occurrences: int
    first_position: int
    last_position: int
    details: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class RepetitionLoopIn(Input):
    pattern: Annotated[Text, Field(min_length=1)]
    message_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    occurrences: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        None, description="How often the pattern occurs (default: one per message)."
    )
    details: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pattern": "I apologise for the confusion, let me try again",
                    "message_ids": [_SAMPLE_MESSAGE, _OTHER_MESSAGE],
                }
            ]
        }
    )


# --- citations ----------------------------------------------------------------------------


class Citation(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    source_reference: str
    quoted_text: str | None
    status: CitationStatus
    verified_at: Timestamp | None = Field(
        description="When the status last became verified, failed or unverifiable."
    )
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp


class CitationIn(Input):
    message_id: uuid.UUID
    source_reference: Annotated[Text, Field(min_length=1)]
    quoted_text: Text | None = None
    status: CitationStatus = "pending"
    note: Text | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message_id": _SAMPLE_MESSAGE,
                    "source_reference": "https://example.com/vat-rules#section-4",
                    "quoted_text": "VAT is charged on the net amount",
                }
            ]
        }
    )


class CitationPatch(Input):
    status: CitationStatus | None = None
    note: Text | None = None


# --- the loop detector --------------------------------------------------------------------


class LoopDetectionIn(Input):
    threshold: Fraction = Field(
        0.9, description="Cosine similarity of stored vectors at which two turns repeat."
    )
    text_threshold: Fraction = Field(
        0.8, description="Similarity of normalised text (word pairs) when a vector is missing."
    )
    min_occurrences: Annotated[int, Field(ge=2, le=1000)] = 3
    role: MessageRole | None = Field(None, description="Only this role's turns (default: all).")
    window: Annotated[int, Field(ge=2, le=2000)] = Field(
        500, description="Scan the conversation's last this many messages."
    )
    save: bool = Field(False, description="Store the loops found, replacing earlier ones.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"threshold": 0.9, "min_occurrences": 3, "save": True}]}
    )


class DetectedLoop(BaseModel):
    role: MessageRole
    pattern: str
    message_ids: list[uuid.UUID]
    occurrences: int
    first_position: int
    last_position: int
    similarity: float = Field(description="The lowest similarity of a turn to the first.")
    method: Literal["vector", "text", "mixed"] = Field(
        description="What the turns were compared by: stored vectors, text, or both."
    )
    loop_id: uuid.UUID | None = Field(None, description="The stored record, when saved.")


class LoopDetection(BaseModel):
    conversation_id: uuid.UUID
    loops: list[DetectedLoop]
    scanned: int = Field(description="Messages compared.")
    with_vectors: int = Field(description="Of those, how many had a vector of `model`.")
    model: str | None
    saved: bool


# --- the health score ---------------------------------------------------------------------


class HealthIn(Input):
    save: bool = Field(False, description="Write the score to the conversation's health_score.")
    weights: dict[MetricName, Weight] | None = Field(
        None, max_length=100, description="Weight per metric (default: the documented ones)."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"save": True}]})

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is not None and not any(w > 0 for w in weights.values()):
            raise ValueError("give at least one metric a weight above 0")
        return weights


class HealthComponent(BaseModel):
    metric: str
    weight: float
    value: float | None = Field(description="The latest value, None when never measured.")
    measured_at: Timestamp | None
    score: float | None = Field(description="The value clamped to 0..1, as the score uses it.")


class HealthReport(BaseModel):
    conversation_id: uuid.UUID
    health_score: int | None = Field(description="0..100, None when no weighted metric exists.")
    exact: float | None = Field(description="The score before rounding.")
    components: list[HealthComponent]
    saved: bool
