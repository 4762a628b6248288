"""Records of events and subscriptions, and their inputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from ctxbase.records.values import Input, JSONObject, JSONValue, Record, Text

# --- events and subscriptions -------------------------------------------------------------

EventType = Annotated[Text, Field(min_length=1, max_length=200)]
DeliveryMethod = Literal["webhook", "redis", "sse", "poll"]
SequenceNumber = Annotated[int, Field(ge=0, le=2**62)]


class Event(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    tenant_id: uuid.UUID = Field(description="The tenant owning the event's project.")
    sequence: int = Field(
        description="1, 2, 3, … without gaps within the project, in commit order."
    )
    event_type: str
    data: Any
    metadata: dict[str, Any]
    created_at: datetime


class EventIn(Input):
    event_type: EventType
    data: JSONValue = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_type": "schema.changed",
                    "data": {"summary": "GET /users now returns email"},
                }
            ]
        }
    )


class EventAppend(EventIn):
    """One event; with ``expected_sequence``, only if the stream is still at that sequence."""

    expected_sequence: SequenceNumber | None = Field(
        None, description="Append only if the stream's last sequence is this (409 otherwise)."
    )


class EventBatch(Input):
    """Several events, appended all or none at consecutive sequences."""

    events: list[EventIn] = Field(min_length=1)
    expected_sequence: SequenceNumber | None = Field(
        None, description="Append only if the stream's last sequence is this (409 otherwise)."
    )


class EventPage(BaseModel):
    items: list[Event]
    last_sequence: int = Field(description="The stream's last sequence when read.")
    next_after: int | None = Field(
        None, description="Pass as `after` for the next page; None when nothing more was there."
    )


class Subscription(Record):
    id: uuid.UUID
    project_id: uuid.UUID
    agent_id: str
    name: str = Field(description="One subscription per project, agent and name.")
    needs: list[str]
    event_types: list[str]
    threshold: float | None
    delivery: DeliveryMethod
    target: str | None
    has_secret: bool = Field(description="Whether webhooks are signed; the secret is never shown.")
    cursor: int = Field(description="The last sequence delivered (or acknowledged).")
    is_active: bool
    attempts: int = Field(description="Failed attempts at delivering the event after `cursor`.")
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SubscriptionIn(Input):
    """An agent's subscription. Registering the same agent and ``name`` again in a project
    replaces the subscription in place (same id, cursor kept unless ``start_after`` is
    given); another ``name`` makes another subscription."""

    agent_id: Annotated[Text, Field(min_length=1, max_length=200)]
    name: Annotated[Text, Field(max_length=200)] = Field(
        "", description="Tells apart several subscriptions of one agent (default: none)."
    )
    needs: list[Annotated[Text, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list,
        max_length=50,
        description="What the agent needs to know, in words; matched by meaning.",
    )
    event_types: list[EventType] = Field(
        default_factory=list,
        max_length=100,
        description="Event types to receive; `prefix.*` matches a family.",
    )
    threshold: Annotated[float, Field(ge=-1, le=1)] | None = Field(
        None, description="Least similarity of a need and an event (default: the setting)."
    )
    delivery: DeliveryMethod = "poll"
    target: Annotated[Text, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="webhook: the URL; redis: the channel."
    )
    secret: Annotated[Text, Field(min_length=16, max_length=500)] | None = Field(
        None, description="webhook: the HMAC key signing each delivery (stored encrypted)."
    )
    start_after: SequenceNumber | None = Field(
        None,
        description="Deliver events after this sequence (default: only new events; when "
        "replacing a subscription, its cursor is kept).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "frontend-agent",
                    "needs": ["changes to the API schema"],
                    "event_types": ["deploy.*"],
                    "delivery": "webhook",
                    "target": "https://agents.example.com/hooks/frontend",
                    "secret": "a-long-random-shared-secret",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _target_fits_delivery(self) -> SubscriptionIn:
        if self.delivery == "webhook":
            if not self.target or not self.target.startswith(("http://", "https://")):
                raise ValueError("webhook delivery needs an http(s) URL as target")
            if not self.secret:
                raise ValueError("webhook delivery needs a secret to sign deliveries")
        elif self.delivery == "redis":
            if not self.target:
                raise ValueError("redis delivery needs a channel as target")
        elif self.target is not None or self.secret is not None:
            raise ValueError(f"{self.delivery} delivery takes no target or secret")
        return self


class Ack(Input):
    sequence: SequenceNumber = Field(description="Everything up to this sequence is handled.")


class PendingEvents(BaseModel):
    """Events a poll subscription has not acknowledged yet, in sequence order."""

    items: list[Event] = Field(description="The matching events, oldest first.")
    cursor: int = Field(description="The subscription's cursor: the last sequence acknowledged.")
    scanned_to: int = Field(
        description="The last sequence examined: acknowledge it once the items are handled "
        "(events between that did not match are then skipped too)."
    )
    last_sequence: int = Field(description="The stream's last sequence when read.")


class DeadLetter(Record):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    sequence: int
    attempts: int
    last_error: str
    created_at: datetime


#: Dead letters one retry sends at most: each is a delivery attempt made while the caller
#: waits (a webhook may take its whole timeout), so a retry stays a request's worth.
RETRY_LIMIT = 100


class DeadLetterRetry(Input):
    ids: list[uuid.UUID] | None = Field(
        None,
        min_length=1,
        max_length=RETRY_LIMIT,
        description=f"The dead letters to send again, by `id` (default: the oldest {RETRY_LIMIT}).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ids": ["0190f3c2-7a41-7d2e-9b8a-5c4d3e2f1a0b"]}]}
    )


class RetryFailure(BaseModel):
    id: uuid.UUID = Field(description="The dead letter, still held.")
    error: str = Field(description="Why it failed again (also its `last_error` now).")


class DeadLettersRetried(BaseModel):
    """What a retry of dead letters did, each sent once more."""

    delivered: list[uuid.UUID] = Field(
        description="Dead letters the receiver took: no longer held."
    )
    failed: list[RetryFailure] = Field(
        description="Dead letters that failed again: still held, one more attempt counted."
    )
    remaining: int = Field(
        description="Dead letters the subscription holds after the retry (those a retry "
        "had no time left for, in neither list, among them)."
    )
