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
from ctxbase.server.routing import declared
from ctxbase.server.sse import BATCH, Run, event_stream, resume_from

router = APIRouter(tags=["subscriptions"])


@declared(router, "subscriptions.create")
def create_subscription(
    project: ProjectSlug, body: SubscriptionIn, store: StoreDep
) -> Subscription:
    return store.subscriptions.create(project=project, **body.model_dump())


@declared(router, "subscriptions.list")
def list_subscriptions(
    project: ProjectSlug,
    store: StoreDep,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Subscription]:
    return store.subscriptions.list(agent_id=agent_id, project=project, limit=limit, cursor=cursor)


@declared(router, "subscriptions.get")
def get_subscription(
    project: ProjectSlug, subscription_id: uuid.UUID, store: StoreDep
) -> Subscription:
    return store.subscriptions.get(subscription_id, project=project)


@declared(router, "subscriptions.delete")
def delete_subscription(
    project: ProjectSlug, subscription_id: uuid.UUID, store: StoreDep
) -> Response:
    store.subscriptions.delete(subscription_id, project=project)
    return Response(status_code=204)


@declared(router, "subscriptions.pending")
def pending_events(
    project: ProjectSlug,
    subscription_id: uuid.UUID,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> PendingEvents:
    return store.subscriptions.pending(subscription_id, limit=limit, after=after, project=project)


@declared(router, "subscriptions.ack")
def ack_events(
    project: ProjectSlug, subscription_id: uuid.UUID, body: Ack, store: StoreDep
) -> Subscription:
    return store.subscriptions.ack(subscription_id, body.sequence, project=project)


@declared(router, "subscriptions.dead_letters")
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


@declared(
    router, "subscriptions.stream", response_class=EventSourceResponse, responses=SSE_RESPONSE
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
