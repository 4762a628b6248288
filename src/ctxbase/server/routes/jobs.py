"""``/jobs``: every job of the server — migrations and re-embedding — read from the records
in its home database (so also those of earlier runs and of other server processes), live
for the jobs this process runs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse

from ctxbase.api.queries import JobQuery
from ctxbase.server import activation
from ctxbase.server.jobs import JobRunner, RunningJob, job_page, job_report, report_json
from ctxbase.server.routing import declared

router = APIRouter(tags=["jobs"])
#: How often a stream rereads the record of a job another process runs.
POLL_SECONDS = 1.0


def runner(request: Request) -> JobRunner:
    jobs: JobRunner | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        jobs = request.app.state.jobs = JobRunner()
    return jobs


@declared(router, "jobs.list")
def list_jobs(query: Annotated[JobQuery, Query()], request: Request) -> Any:
    home = activation.home(request.app)
    page = home.jobs.list(**query.model_dump(exclude_unset=True))
    return job_page(runner(request), home, page)


@declared(router, "jobs.get")
def get_job(job_id: uuid.UUID, request: Request) -> Any:
    return job_report(runner(request), activation.home(request.app), job_id)


@declared(router, "jobs.stream")
async def stream_job(job_id: uuid.UUID, request: Request) -> EventSourceResponse:
    job_report(runner(request), activation.home(request.app), job_id)  # 404 now
    return job_stream(request, job_id)


def job_stream(request: Request, job_id: uuid.UUID) -> EventSourceResponse:
    """``progress`` events with the job's report as it changes, then ``end``."""
    local = runner(request).get(job_id)
    events = _local_events(local, request) if local else _recorded_events(job_id, request)
    return EventSourceResponse(events)


async def _local_events(job: RunningJob, request: Request) -> AsyncIterator[dict[str, str]]:
    seen = -1
    while not await request.is_disconnected():
        version, report = job.version, job.report
        if version != seen:
            seen = version
            yield {"event": "progress", "data": json.dumps(report_json(report))}
            if report.finished:
                yield {"event": "end", "data": json.dumps({"status": report.status})}
                return
        await asyncio.to_thread(_wait_for_change, job, seen)


async def _recorded_events(job_id: uuid.UUID, request: Request) -> AsyncIterator[dict[str, str]]:
    """A job another process runs (or ran): its record, reread until it ends."""
    home = activation.home(request.app)
    last: Any = None
    while not await request.is_disconnected():
        report = await asyncio.to_thread(home.jobs.get, job_id)
        data = report_json(report)
        if data != last:
            last = data
            yield {"event": "progress", "data": json.dumps(data)}
        if report.finished:
            yield {"event": "end", "data": json.dumps({"status": report.status})}
            return
        await asyncio.sleep(POLL_SECONDS)


def _wait_for_change(job: RunningJob, seen: int, timeout: float = 0.5) -> None:
    with job.changed:
        if job.version == seen:
            job.changed.wait(timeout)
