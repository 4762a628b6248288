"""Jobs of the server: migrations (copy data between databases, with live progress,
cancel, resume and verification) and re-embedding runs, read from the job records (so also
those of earlier runs and of other server processes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from markupsafe import escape
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from ctxbase.api.models import DEFAULT_MIGRATION_BATCH
from ctxbase.errors import CtxbaseError, InvalidInputError
from ctxbase.server.console.guard import Visitor, parse_uuid
from ctxbase.server.console.pages.common import VisitorDep, act, field, number_field, page, redirect
from ctxbase.server.console.render import ENV
from ctxbase.transfer import MigrationReport, data_tables

router = APIRouter(prefix="/admin")
#: How often a progress stream rereads the job (its report changes once per batch).
POLL_SECONDS = 0.25


@router.get("/migrations")
async def migrations(v: VisitorDep) -> Response:
    jobs, configs = await asyncio.gather(
        v.api.jobs.list(kind="migration", limit=50), v.api.databases.list()
    )
    return await page(
        v,
        "migrations.html",
        title="Migrations",
        section="migrations",
        jobs=jobs.items,
        configs=configs,
        tables=data_tables(),
        batch_size=DEFAULT_MIGRATION_BATCH,
    )


@router.post("/migrations")
async def start(v: VisitorDep) -> Response:
    job: MigrationReport | None = await act(
        v,
        lambda: v.api.migrations.start(
            source=_ref(v, "source"),
            target=_ref(v, "target"),
            tables=_tables(v),
            batch_size=number_field(v, "batch_size", int) or DEFAULT_MIGRATION_BATCH,
            reembed=v.form.get("reembed") == "on",
        ),
        "Migration started.",
    )
    if job is None:
        return redirect(f"{v.base}/admin/migrations")
    return redirect(f"{v.base}/admin/jobs/{job.id}")


def _ref(v: Visitor, side: str) -> dict[str, str]:
    """A database reference from the form: a configuration, or a URL typed in."""
    url = v.form.get(f"{side}_url", "").strip()
    if url:
        return {"url": url}
    config = field(v, f"{side}_config")
    if config is None:
        raise InvalidInputError(f"Choose the {side} database, or give its URL")
    return {"config": config}


def _tables(v: Visitor) -> list[str] | None:
    chosen = [t for t in v.form.get("tables", "").splitlines() if t]
    return None if not chosen or sorted(chosen) == sorted(data_tables()) else chosen


@router.get("/jobs/{job_id}")
@router.get("/migrations/{job_id}")
async def job_page(v: VisitorDep, job_id: str) -> Response:
    job = await v.api.jobs.get(parse_uuid(job_id))
    section = "migrations" if job.kind == "migration" else "embeddings"
    title = "Migration" if job.kind == "migration" else "Re-embedding"
    return await page(
        v, "migration.html", title=title, section=section, job=job, panel=_panel(v, job)
    )


@router.post("/jobs/{job_id}/cancel")
async def cancel(v: VisitorDep, job_id: str) -> Response:
    jid = parse_uuid(job_id)
    await act(
        v,
        lambda: v.api.migrations.cancel(jid),
        "Cancelling: the job stops after the batch in hand.",
    )
    return redirect(f"{v.base}/admin/jobs/{jid}")


@router.post("/jobs/{job_id}/resume")
async def resume(v: VisitorDep, job_id: str) -> Response:
    jid = parse_uuid(job_id)
    await act(
        v,
        lambda: v.api.migrations.resume(jid, target=_typed_ref(v, "target")),
        "Resumed: the job goes on after the last batch it committed.",
    )
    return redirect(f"{v.base}/admin/jobs/{jid}")


def _typed_ref(v: Visitor, name: str) -> dict[str, str] | None:
    """A database typed in one field: a URL (it has a scheme) or a configuration's name."""
    text = field(v, name)
    if text is None:
        return None
    return {"url": text} if "://" in text else {"config": text}


@router.get("/jobs/{job_id}/stream")
async def stream(v: VisitorDep, job_id: str) -> EventSourceResponse:
    """The job's progress panel, rendered again each time the job's report changes, until
    the job ends (``panel`` events, then ``end``)."""
    jid = parse_uuid(job_id)
    await v.api.jobs.get(jid)  # 403/404 now, not inside the stream
    return EventSourceResponse(_panels(v, jid), ping=15, headers={"Cache-Control": "no-store"})


async def _panels(v: Visitor, job_id: Any) -> AsyncIterator[dict[str, str]]:
    api = v.open_api()  # the page's own client closes with its request
    try:
        last = None
        while True:
            try:
                job = await api.jobs.get(job_id)
            except CtxbaseError as error:
                yield {"event": "panel", "data": f"<p>{escape(str(error))}</p>"}
                return
            html = _panel(v, job)
            if html != last:
                last = html
                yield {"event": "panel", "data": html}
            if job.finished:
                yield {"event": "end", "data": json.dumps({"status": job.status})}
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await api.aclose()


def _panel(v: Visitor, job: MigrationReport) -> str:
    return ENV.get_template("_migration_panel.html").render(base=v.base, v=v, job=job)
