"""``/projects/{project}/subscriptions``: agents' standing requests for events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sse_starlette import EventSourceResponse

from ctxbase.errors import InvalidInputError
from ctxbase.records import Ack, DeadLetter, Page, PendingEvents, Subscription, SubscriptionIn
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, ProjectSlug, StoreDep
from ctxbase.server.routes.events import SSE_RESPONSE, LastEventId
from ctxbase.server.sse import BATCH, Run, event_stream, resume_from

router = APIRouter(prefix="/projects/{project}/subscriptions", tags=["subscriptions"])


@router.post("", status_code=201, response_model=Subscription, summary="Subscribe an agent")
def create_subscription(
    project: ProjectSlug, body: SubscriptionIn, store: StoreDep
) -> Subscription:
    return store.subscriptions.create(project=project, **body.model_dump())


@router.get("", response_model=Page[Subscription], summary="List subscriptions")
def list_subscriptions(
    project: ProjectSlug,
    store: StoreDep,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Subscription]:
    return store.subscriptions.list(agent_id=agent_id, project=project, limit=limit, cursor=cursor)


@router.get("/{subscription_id}", response_model=Subscription, summary="Get a subscription")
def get_subscription(
    project: ProjectSlug, subscription_id: uuid.UUID, store: StoreDep
) -> Subscription:
    return store.subscriptions.get(subscription_id, project=project)


@router.delete("/{subscription_id}", status_code=204, summary="Delete a subscription")
def delete_subscription(
    project: ProjectSlug, subscription_id: uuid.UUID, store: StoreDep
) -> Response:
    store.subscriptions.delete(subscription_id, project=project)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/pending",
    response_model=PendingEvents,
    summary="Matching events not yet acknowledged (poll delivery)",
)
def pending_events(
    project: ProjectSlug, subscription_id: uuid.UUID, store: StoreDep, limit: Limit = DEFAULT_LIMIT
) -> PendingEvents:
    return store.subscriptions.pending(subscription_id, limit=limit, project=project)


@router.post(
    "/{subscription_id}/ack",
    response_model=Subscription,
    summary="Acknowledge every event up to a sequence",
)
def ack_events(
    project: ProjectSlug, subscription_id: uuid.UUID, body: Ack, store: StoreDep
) -> Subscription:
    return store.subscriptions.ack(subscription_id, body.sequence, project=project)


@router.get(
    "/{subscription_id}/dead-letters",
    response_model=Page[DeadLetter],
    summary="Events given up on after the last delivery attempt",
)
def dead_letters(
    project: ProjectSlug,
    subscription_id: uuid.UUID,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeadLetter]:
    return store.subscriptions.dead_letters(
        subscription_id, project=project, limit=limit, cursor=cursor
    )


@router.get(
    "/{subscription_id}/stream",
    response_class=EventSourceResponse,
    responses=SSE_RESPONSE,  # type: ignore[arg-type]
    summary="Receive an `sse` subscription's events live, from its cursor; reconnecting with "
    "`Last-Event-ID` acknowledges everything up to it",
)
def stream_subscription(
    project: ProjectSlug,
    subscription_id: uuid.UUID,
    store: StoreDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    subscriptions = store.subscriptions
    subscription = subscriptions.get(subscription_id, project=project)
    if subscription.delivery != "sse":
        raise InvalidInputError(
            f"This subscription delivers by {subscription.delivery}, not sse",
            hint="create one with delivery 'sse' to stream it",
        )
    if last_event_id is not None:
        subscription = subscriptions.ack(
            subscription_id, resume_from(None, last_event_id), project=project
        )

    def read(position: int) -> Run:
        pending = subscriptions.pending(
            subscription_id, limit=BATCH, after=position, project=project
        )
        return Run(
            pending.items,
            pending.scanned_to,
            more=pending.scanned_to < pending.last_sequence,
        )

    return event_stream(read, store.notifier, subscription.cursor, subscription.project_id)
