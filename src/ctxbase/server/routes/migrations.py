"""``/migrations``: copy data between databases as a job; status, live stream, cancel.

Administration routes. A job is checked (tables, both databases, an empty target) before
the answer, so bad input fails with a 4xx and nothing written; the copy then runs in the
background. Endpoints are named by registered configuration or by URL; responses show
URLs masked."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from ctxbase import transfer
from ctxbase.api.models import DatabaseRef, MigrationIn
from ctxbase.db.urls import parse_database_url
from ctxbase.errors import ConfigurationError, InvalidInputError
from ctxbase.server import activation
from ctxbase.server.deps import audit
from ctxbase.server.migration_runner import MigrationRunner, RunningJob, report_json
from ctxbase.server.routing import declared

router = APIRouter(tags=["migrations"])


def _runner(request: Request) -> MigrationRunner:
    runner = getattr(request.app.state, "migrations", None)
    if runner is None:
        runner = request.app.state.migrations = MigrationRunner()
    return runner


def _url(request: Request, ref: DatabaseRef) -> str:
    if ref.url is not None:
        try:
            parse_database_url(ref.url)
        except ConfigurationError as error:
            raise InvalidInputError(error.message, hint=error.hint) from None
        return ref.url
    assert ref.config is not None
    return activation.home(request.app).databases.url(ref.config)


@declared(router, "migrations.start")
def start_migration(body: MigrationIn, request: Request) -> Any:
    home = activation.home(request.app)
    cancel = threading.Event()
    prepared = transfer.prepare_migration(
        _url(request, body.source),
        _url(request, body.target),
        tables=body.tables,
        batch_size=body.batch_size,
        reembed=body.reembed,
        settings=home.settings,
        cancel=cancel,
    )
    job = _runner(request).start(prepared, cancel)
    audit(request, "migration.start", str(job.report.id), tables=body.tables)
    return report_json(job.report)


@declared(router, "migrations.list")
def list_migrations(request: Request) -> Any:
    reports = [job.report for job in _runner(request).all()]
    reports.sort(key=lambda report: report.created_at, reverse=True)
    return {"items": [report_json(r) for r in reports], "next_cursor": None}


@declared(router, "migrations.get")
def get_migration(job_id: uuid.UUID, request: Request) -> Any:
    return report_json(_runner(request).get(job_id).report)


@declared(router, "migrations.cancel")
def cancel_migration(job_id: uuid.UUID, request: Request) -> Any:
    """Stop after the batch in hand; the job can be resumed later."""
    job = _runner(request).get(job_id)
    job.cancel.set()
    audit(request, "migration.cancel", str(job_id))
    return report_json(job.report)


@declared(router, "migrations.stream")
async def stream_migration(job_id: uuid.UUID, request: Request) -> EventSourceResponse:
    job = _runner(request).get(job_id)
    return EventSourceResponse(_events(job, request))


async def _events(job: RunningJob, request: Request) -> AsyncIterator[dict[str, str]]:
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


def _wait_for_change(job: RunningJob, seen: int, timeout: float = 0.5) -> None:
    with job.changed:
        if job.version == seen:
            job.changed.wait(timeout)
