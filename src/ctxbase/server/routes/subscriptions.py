"""``/projects/{project}/subscriptions``: agents' standing requests for events."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from ctxbase.errors import InvalidInputError
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routes.events import SSE_RESPONSE, LastEventId
from ctxbase.server.routing import declared
from ctxbase.server.sse import BATCH, Run, event_stream, resume_from

router = APIRouter(tags=["subscriptions"])


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
