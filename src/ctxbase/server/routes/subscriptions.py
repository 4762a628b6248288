"""``/projects/{project}/subscriptions``: agents' standing requests for events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from ctxbase.api import operation
from ctxbase.errors import InvalidInputError
from ctxbase.records import DeadLetterRetry, DeadLettersRetried, Subscription, SubscriptionIn
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routes.events import SSE_RESPONSE, LastEventId
from ctxbase.server.routing import declared
from ctxbase.server.sse import BATCH, Run, event_stream, resume_from
from ctxbase.store.subscriptions import is_new

router = APIRouter(tags=["subscriptions"])


@declared(
    router,
    "subscriptions.create",
    responses={
        200: {
            "model": Subscription,
            "description": "The agent's subscription of that name was replaced in place.",
        }
    },
)
def create_subscription(
    project: ProjectSlug, body: Annotated[SubscriptionIn, Body()], store: StoreDep
) -> JSONResponse:
    """201 with a new subscription; 200 when the agent's subscription of the same name was
    replaced (same id, cursor kept unless `start_after` is given)."""
    made = store.subscriptions.create(**body.model_dump(exclude_unset=True), project=project)
    status = 201 if is_new(made) else 200
    return JSONResponse(made.model_dump(mode="json"), status_code=status)


@declared(router, "subscriptions.retry_dead_letters")
def retry_dead_letters(
    project: ProjectSlug,
    subscription_id: uuid.UUID,
    store: StoreDep,
    body: Annotated[DeadLetterRetry | None, Body()] = None,
) -> DeadLettersRetried:
    """Without a body, the oldest dead letters are retried, as with `{}`."""
    given = body.model_dump(exclude_unset=True) if body is not None else {}
    return store.subscriptions.retry_dead_letters(subscription_id, **given, project=project)


@declared(
    router, "subscriptions.stream", response_class=EventSourceResponse, responses=SSE_RESPONSE
)
def stream_subscription(
    project: ProjectSlug,
    subscription_id: uuid.UUID,
    store: StoreDep,
    request: Request,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    if last_event_id is not None:  # resuming acknowledges: the caller may acknowledge?
        request.app.state.gate.require(request.state.principal, operation("subscriptions.ack"))
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
