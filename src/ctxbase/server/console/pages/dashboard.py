"""The dashboard: health, what each project holds, the embedding backlog, recent events,
connection pool and running jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ctxbase.errors import CtxbaseError, NotFoundError
from ctxbase.records import Event, Project
from ctxbase.server.console.counts import project_counts
from ctxbase.server.console.guard import Visitor
from ctxbase.server.console.pages.common import (
    VisitorDep,
    fragment,
    page,
    redirect,
    visible_projects,
)
from ctxbase.store import Store

router = APIRouter()
#: Projects whose counts the dashboard shows (the rest are a click away).
COUNTED_PROJECTS = 20
RECENT_EVENTS = 10


@router.get("/")
async def dashboard(v: VisitorDep) -> Response:
    """What the project holds, recent events, jobs and the pool; the health checks load
    beside it (:func:`health`), so the page never waits for them."""
    projects = await visible_projects(v)
    current = _current_project(v, projects)
    events, jobs, counts = await asyncio.gather(
        _recent_events(v, current),
        _jobs(v),
        run_in_threadpool(_counts, v.store(), projects[:COUNTED_PROJECTS]),
    )
    return await page(
        v,
        "dashboard.html",
        title="Dashboard",
        section="dashboard",
        project=current,
        projects=projects,
        counts=counts,
        more_projects=max(0, len(projects) - COUNTED_PROJECTS),
        events=events,
        pool=_pool(v),
        jobs=jobs,
    )


@router.get("/health")
async def health(v: VisitorDep) -> Response:
    """The health cards: the server's ``/health`` report (database, pgvector, embedder
    with its backlog, Redis), which checks the schema's revision and counts the backlog,
    so it takes a while: the dashboard loads it beside itself."""
    context = {"health": await v.api.health(), "pool": _pool(v)}
    if v.request.headers.get("hx-request"):
        return fragment(v, "_health.html", **context)
    return await page(v, "health.html", title="Health", section="dashboard", **context)


@router.get("/go")
async def go(v: VisitorDep, project: str = "") -> Response:
    """The project switcher: open the chosen project's conversations."""
    if not project:
        return redirect(f"{v.base}/")
    return redirect(f"{v.base}/p/{project}/conversations")


def _current_project(v: Visitor, projects: list[Project]) -> str | None:
    slugs = [p.slug for p in projects]
    for wanted in (v.session.project, "default"):
        if wanted in slugs:
            return wanted
    return slugs[0] if slugs else None


def _counts(store: Store, projects: list[Project]) -> list[tuple[Project, dict[str, int]]]:
    found = []
    for project in projects:
        try:
            found.append((project, project_counts(store, project.slug)))
        except NotFoundError:
            continue  # deleted meanwhile
    return found


async def _optional(v: Visitor, name: str, call: Any) -> Any:
    """An API call whose section the page leaves out when the key may not make it."""
    if not v.can(name):
        call.close()
        return None
    try:
        return await call
    except CtxbaseError:
        return None


async def _recent_events(v: Visitor, project: str | None) -> list[Event]:
    if project is None or not v.can("events.list", project):
        return []
    last = await v.api.events.last_sequence(project=project)
    page_ = await v.api.events.list(
        after=max(0, last - RECENT_EVENTS), limit=RECENT_EVENTS, project=project
    )
    return list(reversed(page_.items))


async def _jobs(v: Visitor) -> dict[str, Any] | None:
    """Running migrations and the last re-embedding, for server admins."""
    if not v.can("migrations.list"):
        return None
    migrations, reembed = await asyncio.gather(
        v.api.migrations.list(),
        _optional(v, "embeddings.reembed_status", v.api.embeddings.reembed_status()),
    )
    running = [job for job in migrations if not job.finished]
    return {"migrations": running, "reembed": reembed}


def _pool(v: Visitor) -> dict[str, Any] | None:
    """Connections of the served database's pool (what /metrics reports), for those who
    may read the server's metrics."""
    if not v.can("metrics"):
        return None
    store: Store = v.parent.state.store
    pool: Any = store.db.engine.pool
    settings = store.settings
    return {
        "backend": store.backend,
        "in_use": pool.checkedout() if hasattr(pool, "checkedout") else None,
        "idle": pool.checkedin() if hasattr(pool, "checkedin") else None,
        "size": settings.pool_size,
        "overflow": settings.max_overflow,
    }
