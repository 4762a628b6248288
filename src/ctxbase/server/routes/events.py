"""``/projects/{project}/events``: a project's event stream — append, read, follow live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query
from sse_starlette import EventSourceResponse

from ctxbase.records import Event, EventAppend, EventBatch, EventIn
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared
from ctxbase.server.sse import BATCH, Run, event_stream, resume_from

router = APIRouter(tags=["events"])

After = Annotated[int, Query(ge=0, le=2**62, description="Only events after this sequence.")]
LastEventId = Annotated[
    str | None,
    Header(description="SSE resume: the `id` of the last event received (overrides `after`)."),
]
SSE_RESPONSE = {
    200: {
        "content": {
            "text/event-stream": {"example": 'id: 7\nevent: event\ndata: {"sequence": 7}\n'}
        },
        "description": "Server-sent events: `id` is the sequence, `data` the event as JSON.",
    }
}


@declared(
    router,
    "events.append",
    "events.append_many",
    response_model=Event | list[Event],
    summary="Append one event (an object) or several (an array, or `events` with "
    "`expected_sequence`); 409 when `expected_sequence` is not the stream's last sequence",
)
def append_events(
    project: ProjectSlug,
    body: Annotated[EventAppend | EventBatch | list[EventIn], Body()],
    store: StoreDep,
) -> Event | list[Event]:
    if isinstance(body, EventAppend):
        single = EventIn.model_validate(body.model_dump(exclude={"expected_sequence"}))
        appended = store.events.append_many(
            [single], expected_sequence=body.expected_sequence, project=project
        )
        return appended[0]
    if isinstance(body, EventBatch):
        return store.events.append_many(
            body.events, expected_sequence=body.expected_sequence, project=project
        )
    return store.events.append_many(body, project=project)


@declared(router, "events.stream", response_class=EventSourceResponse, responses=SSE_RESPONSE)
def stream_events(
    project: ProjectSlug,
    store: StoreDep,
    after: After = 0,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    start = resume_from(after, last_event_id)
    store.events.last_sequence(project=project)  # 404 now, not inside the stream

    def read(position: int) -> Run:
        page = store.events.list(after=position, limit=BATCH, project=project)
        scanned = page.items[-1].sequence if page.items else position
        return Run(page.items, scanned, more=page.next_after is not None)

    return event_stream(read, store.notifier, start)
