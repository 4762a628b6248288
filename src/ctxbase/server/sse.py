"""Server-sent event streams of a project's events: replay from a sequence, then follow.

A stream first sends every event after the starting sequence, then waits for new ones
(woken by this process's appends, by other processes' through PostgreSQL NOTIFY, or by a
poll) and sends them as they commit. Each SSE message carries the event's sequence as its
``id``, so a client that reconnects with ``Last-Event-ID`` resumes exactly after the last
event it received.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from ctxbase.errors import InvalidInputError
from ctxbase.events.notifier import EventNotifier
from ctxbase.records import Event
from ctxbase.store.base import MAX_SEQUENCE

BATCH = 500
PING_SECONDS = 15


def resume_from(after: int | None, last_event_id: str | None) -> int:
    """Where a stream starts: after ``Last-Event-ID`` when the client sends one."""
    if last_event_id is not None and last_event_id.strip():
        # Plain ASCII digits only: int() would also take "1_000", "+5" or " 7 ", and a
        # subscription's stream acknowledges what it resumes after.
        if not (last_event_id.isascii() and last_event_id.isdigit()):
            raise InvalidInputError("Last-Event-ID must be an event sequence")
        resumed = int(last_event_id)
        if resumed > MAX_SEQUENCE:
            raise InvalidInputError("Last-Event-ID must be an event sequence")
        return resumed
    return after or 0


@dataclass(frozen=True)
class Run:
    """What one read of a stream gave: events to send, the sequence examined up to (past
    the last event when events are filtered), and whether more are there already."""

    events: list[Event]
    scanned_to: int
    more: bool


def event_stream(
    read: Callable[[int], Run],
    notifier: EventNotifier,
    after: int,
    project_id: uuid.UUID | None = None,
) -> EventSourceResponse:
    """An SSE response of the events ``read(after)`` returns, for as long as the client
    stays."""

    async def messages() -> AsyncIterator[dict[str, Any]]:
        position = after
        while True:
            seen = notifier.generation
            run = await run_in_threadpool(read, position)
            for event in run.events:
                yield {"id": str(event.sequence), "event": "event", "data": event.model_dump_json()}
            position = max(position, run.scanned_to)
            if not run.more:
                await notifier.wait_async(project_id, since=seen)

    return EventSourceResponse(messages(), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})
