"""A project's event stream, followed live, and its subscriptions."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from ctxbase.errors import NotFoundError
from ctxbase.events.transports import PUSH_METHODS
from ctxbase.records import DeadLettersRetried, Subscription
from ctxbase.server.console.guard import Visitor, parse_uuid
from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    delete_item,
    field,
    fragment,
    json_field,
    listing,
    number_field,
    opened,
    page,
    redirect,
)
from ctxbase.server.routes.events import stream_events

router = APIRouter(prefix="/p/{project}")
#: Events shown when the tail opens; newer ones stream in.
BACKLOG = 50


@router.get("/events")
async def events(v: VisitorDep, project: str) -> Response:
    opened(v, project)
    last = await v.api.events.last_sequence(project=project)
    listed = await v.api.events.list(after=max(0, last - BACKLOG), limit=BACKLOG, project=project)
    return await page(
        v,
        "events.html",
        title=f"Events · {project}",
        project=project,
        section="events",
        items=list(reversed(listed.items)),
        last=listed.last_sequence,
    )


@router.get("/events/stream")
async def follow(
    v: VisitorDep,
    project: str,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """The project's events as they commit (the API's own stream, for this session)."""
    if not v.can("events.stream", project):
        raise NotFoundError(f"No project {project!r}")
    return stream_events(project, v.store(), after, last_event_id)


@router.post("/events/append")
async def append(v: VisitorDep, project: str) -> Response:
    """Append an event from the form; the tail shows it when it commits."""
    appended = await act(
        v,
        lambda: v.api.events.append(
            field(v, "event_type") or "", json_field(v, "data", default={}), project=project
        ),
        "Event appended.",
    )
    if v.request.headers.get("hx-request"):
        v.session.take_flashes()
        return fragment(v, "_appended.html", event=appended)
    return redirect(f"{v.base}/p/{project}/events")


# --- subscriptions ------------------------------------------------------------------------


@router.get("/subscriptions")
async def subscriptions(
    v: VisitorDep, project: str, agent_id: str = "", cursor: str | None = None
) -> Response:
    return await listing(
        v,
        "subscriptions",
        lambda: v.api.subscriptions.list(
            agent_id=agent_id or None, limit=PAGE, cursor=cursor, project=project
        ),
        title="Subscriptions",
        cursor=cursor,
        filters={"agent_id": agent_id},
        project=project,
        shown=lambda s: (s, masked_target(s)),
    )


@router.get("/subscriptions/{subscription_id}")
async def subscription(v: VisitorDep, project: str, subscription_id: str) -> Response:
    opened(v, project)
    sid = parse_uuid(subscription_id)
    found, pending, dead = await asyncio.gather(
        v.api.subscriptions.get(sid, project=project),
        v.api.subscriptions.pending(sid, limit=PAGE, project=project),
        v.api.subscriptions.dead_letters(sid, limit=PAGE, project=project),
    )
    return await page(
        v,
        "subscription.html",
        title=f"Subscription of {found.agent_id}",
        project=project,
        section="subscriptions",
        s=found,
        target=masked_target(found),
        pending=pending,
        dead=dead.items,
        retryable=found.delivery in PUSH_METHODS,
    )


@router.post("/subscriptions")
async def create_subscription(v: VisitorDep, project: str) -> Response:
    created: Subscription | None = await act(
        v,
        lambda: v.api.subscriptions.create(
            agent_id=field(v, "agent_id") or "",
            needs=_lines(v.form.get("needs", "")),
            event_types=_lines(v.form.get("event_types", "").replace(",", "\n")),
            threshold=number_field(v, "threshold"),
            delivery=field(v, "delivery") or "poll",
            target=field(v, "target"),
            secret=field(v, "secret"),
            project=project,
        ),
        "Subscription created.",
    )
    if created is None:
        return redirect(f"{v.base}/p/{project}/subscriptions")
    return redirect(f"{v.base}/p/{project}/subscriptions/{created.id}")


@router.post("/subscriptions/{subscription_id}/ack")
async def ack(v: VisitorDep, project: str, subscription_id: str) -> Response:
    sid = parse_uuid(subscription_id)
    await act(
        v,
        lambda: v.api.subscriptions.ack(
            sid, number_field(v, "sequence", int) or 0, project=project
        ),
        "Acknowledged.",
    )
    return redirect(f"{v.base}/p/{project}/subscriptions/{sid}")


@router.post("/subscriptions/{subscription_id}/dead-letters/retry")
async def retry_dead_letters(v: VisitorDep, project: str, subscription_id: str) -> Response:
    """Send the dead letters named in the form (``ids``; none: the oldest) once more."""
    sid = parse_uuid(subscription_id)
    ids = [parse_uuid(i) for i in _lines(v.form.get("ids", ""))] or None
    retried: DeadLettersRetried | None = await act(
        v, lambda: v.api.subscriptions.retry_dead_letters(sid, ids=ids, project=project), ""
    )
    if retried is not None:
        _flash_retry(v, retried)
    return redirect(f"{v.base}/p/{project}/subscriptions/{sid}")


def _flash_retry(v: Visitor, retried: DeadLettersRetried) -> None:
    if retried.delivered:
        v.flash("ok", f"Delivered {len(retried.delivered)}; they left the dead letters.")
    for failure in retried.failed[:5]:
        v.flash("error", f"Failed again, kept: {failure.error}")
    if len(retried.failed) > 5:
        v.flash("error", f"{len(retried.failed) - 5} more failed again, kept.")
    if not retried.delivered and not retried.failed:
        v.flash("ok", "No dead letters to retry.")


@router.post("/subscriptions/{subscription_id}/delete")
async def delete_subscription(v: VisitorDep, project: str, subscription_id: str) -> Response:
    sid = parse_uuid(subscription_id)
    return await delete_item(
        v,
        lambda: v.api.subscriptions.delete(sid, project=project),
        "Subscription deleted.",
        f"{v.base}/p/{project}/subscriptions/{sid}",
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def masked_target(subscription: Subscription) -> str | None:
    """The delivery target with any password in its URL hidden."""
    target = subscription.target
    if not target or "@" not in target:
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
