"""``/migrations``: copy data between databases as a job; status, live stream, cancel,
resume.

Administration routes. A job is checked (tables, both databases, an empty target) before
the answer, so bad input fails with a 4xx and nothing written; the copy then runs in the
background (see :mod:`ctxbase.server.jobs`). Endpoints are named by registered
configuration or by URL; responses show URLs masked. A registered configuration written
into shows status ``migrating`` until the job ends."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from sse_starlette.sse import EventSourceResponse

from ctxbase import transfer
from ctxbase.api.models import DatabaseRef, MigrationIn, MigrationResumeIn
from ctxbase.db.urls import parse_database_url
from ctxbase.errors import (
    ConfigurationError,
    ConflictError,
    CtxbaseError,
    InvalidInputError,
    NotFoundError,
)
from ctxbase.server import activation
from ctxbase.server.deps import audit
from ctxbase.server.jobs import TARGET_CONFIGS, RunningJob, job_page, job_report, report_json
from ctxbase.server.routes.jobs import job_stream, runner
from ctxbase.server.routing import declared
from ctxbase.store import Store
from ctxbase.store.jobs import load_job
from ctxbase.transfer.report import MigrationReport

router = APIRouter(tags=["migrations"])
#: ``migrations.list`` shows this many, newest first; ``jobs.list`` pages through all.
LISTED = 1000


def _url(home: Store, ref: DatabaseRef) -> str:
    if ref.url is not None:
        try:
            parse_database_url(ref.url)
        except ConfigurationError as error:
            raise InvalidInputError(error.message, hint=error.hint) from None
        return ref.url
    assert ref.config is not None
    return home.databases.url(ref.config)


def _configs_at(home: Store, ref: DatabaseRef, url: str) -> list[uuid.UUID]:
    """The registered configurations a job writing to ``ref`` writes into: the one named,
    or those whose database the URL names."""
    if ref.config is not None:
        return [home.databases.get(ref.config).id]
    wanted = _identity(url)
    found = []
    for config in home.databases.list():
        try:
            if wanted is not None and _identity(home.databases.url(config.id)) == wanted:
                found.append(config.id)
        except CtxbaseError:  # a configuration this server cannot open: not this one
            continue
    return found


def _identity(url: str) -> tuple[Any, ...] | None:
    """Which database a URL names, whatever its spelling (None: one in memory)."""
    parsed = parse_database_url(url)
    if parsed.in_memory:
        return None
    if parsed.sqlite_path is not None:
        return ("sqlite", str(Path(parsed.sqlite_path).resolve()))
    u = parsed.url
    host = u.host or u.query.get("host") or "localhost"
    return ("postgresql", str(host), u.port or 5432, u.database)


@declared(router, "migrations.start")
def start_migration(body: MigrationIn, request: Request) -> Any:
    home = activation.home(request.app)
    source, target = _url(home, body.source), _url(home, body.target)
    marked: list[tuple[uuid.UUID, str]] = []
    try:
        for config_id in _configs_at(home, body.target, target):
            marked.append(home.databases.mark_migrating(config_id))
        cancel = threading.Event()
        prepared = transfer.prepare_migration(
            source,
            target,
            tables=body.tables,
            batch_size=body.batch_size,
            reembed=body.reembed,
            settings=home.settings,
            cancel=cancel,
        )
    except BaseException:
        for config_id, previous in marked:
            home.databases.unmark_migrating(config_id, previous)
        raise
    job = runner(request).start_migration(prepared, cancel, home, target_configs=marked)
    audit(request, "migration.start", str(job.report.id), tables=body.tables)
    return report_json(job.report)


@declared(router, "migrations.list")
def list_migrations(request: Request) -> Any:
    home = activation.home(request.app)
    page = job_page(runner(request), home, home.jobs.list(kind="migration", limit=LISTED))
    return {"items": [report_json(r) for r in page.items], "next_cursor": None}


@declared(router, "migrations.get")
def get_migration(job_id: uuid.UUID, request: Request) -> Any:
    return report_json(_migration(request, job_id))


@declared(router, "migrations.cancel")
def cancel_migration(job_id: uuid.UUID, request: Request) -> Any:
    """Stop after the batch in hand; the job can be resumed later."""
    report = _migration(request, job_id)
    job = runner(request).get(job_id)
    if job is None or job.cancel is None:
        if report.finished:
            raise ConflictError(f"Migration job {job_id} has ended ({report.status})")
        raise ConflictError(
            f"Migration job {job_id} is not run by this server process",
            hint="cancel it on the server that started it",
        )
    job.cancel.set()
    audit(request, "migration.cancel", str(job_id))
    return report_json(job.report)


@declared(router, "migrations.resume")
def resume_migration(
    job_id: uuid.UUID,
    request: Request,
    body: Annotated[MigrationResumeIn | None, Body()] = None,
) -> Any:
    """Go on after the job's last committed batch, in a job of the same id. The target is
    by default the configuration the job was started into (422 naming `target` when there
    is none); configurations written into show `migrating` again until it ends."""
    body = body or MigrationResumeIn()
    home = activation.home(request.app)
    jobs = runner(request)
    with jobs.resuming:  # from the checks to the start: never two runs of one job here
        report = _migration(request, job_id)
        _require_resumable(report, jobs.get(job_id))
        if body.target is not None:
            target = _url(home, body.target)
            configs = _configs_at(home, body.target, target)
        else:
            target, configs = _recorded_target(home, job_id)
        source = _url(home, body.source) if body.source is not None else None
        marked: list[tuple[uuid.UUID, str]] = []
        try:
            for config_id in configs:
                marked.append(home.databases.mark_migrating(config_id))
            cancel = threading.Event()
            prepared = transfer.prepare_resume(
                job_id, target, source=source, settings=home.settings, cancel=cancel
            )
        except BaseException:
            for config_id, previous in marked:
                home.databases.unmark_migrating(config_id, previous)
            raise
        job = jobs.start_migration(prepared, cancel, home, target_configs=marked)
    audit(request, "migration.resume", str(job_id))
    return report_json(job.report)


def _require_resumable(report: MigrationReport, local: RunningJob | None) -> None:
    if report.status in ("completed", "completed_with_errors"):
        raise ConflictError(f"Migration job {report.id} has finished ({report.status})")
    if local is not None and not local.report.finished:
        raise ConflictError(f"Migration job {report.id} is running in this server process")
    if not report.finished:  # recorded as running by another process: it may well be
        raise ConflictError(
            f"Migration job {report.id} is {report.status} in another server process",
            hint="cancel it on the server that runs it; a server that stopped marks its "
            "jobs cancelled when it starts again",
        )


def _recorded_target(home: Store, job_id: uuid.UUID) -> tuple[str, list[uuid.UUID]]:
    """The URL of the registered configurations the job was started into, and their ids
    (those still registered); InvalidInputError naming ``target`` when there are none."""
    recorded = load_job(home.db, job_id) or {}
    configs = []
    for entry in (recorded.get("options") or {}).get(TARGET_CONFIGS) or []:
        try:
            configs.append(home.databases.get(entry["id"]).id)
        except NotFoundError:  # forgotten since
            continue
    if not configs:
        problem = "the database it copies into is not a registered configuration"
        raise InvalidInputError(
            f"target: give the target of migration job {job_id}: {problem}",
            details=[{"location": ["target"], "message": problem, "type": "missing"}],
        )
    return home.databases.url(configs[0]), configs


@declared(router, "migrations.stream")
async def stream_migration(job_id: uuid.UUID, request: Request) -> EventSourceResponse:
    _migration(request, job_id)  # 404 now, not inside the stream
    return job_stream(request, job_id)


def _migration(request: Request, job_id: uuid.UUID) -> Any:
    report = job_report(runner(request), activation.home(request.app), job_id)
    if report.kind != "migration":
        raise NotFoundError(f"No migration job {job_id}", hint="it is a job: see /jobs/{id}")
    return report
