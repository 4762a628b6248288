"""The dashboard: health, what each project holds, the embedding backlog, recent events,
connection pool and running jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ctxbase.errors import NotFoundError
from ctxbase.records import Event, Project
from ctxbase.server.console.counts import KINDS, project_counts
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
        run_in_threadpool(_counts, v.store(), _countable(v, projects, current)),
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
    if not slugs:  # a key whose scopes do not list projects: the one it last opened
        return v.session.project
    for wanted in (v.session.project, "default"):
        if wanted in slugs:
            return wanted
    return slugs[0]


def _countable(
    v: Visitor, projects: list[Project], current: str | None
) -> list[tuple[str, str, list[str]]]:
    """The projects to count (the first ones, or the current one when the key may not
    list projects), each with the kinds the key may list in it (``{kind}.list``)."""
    named = [(p.slug, p.name or p.slug) for p in projects[:COUNTED_PROJECTS]]
    if not named and current is not None:
        named = [(current, current)]
    return [
        (slug, name, [kind for kind in KINDS if v.can(f"{kind}.list", slug)])
        for slug, name in named
    ]


def _counts(
    store: Store, projects: list[tuple[str, str, list[str]]]
) -> list[tuple[str, str, dict[str, int]]]:
    found = []
    for slug, name, kinds in projects:
        try:
            found.append((slug, name, project_counts(store, slug, kinds) if kinds else {}))
        except NotFoundError:
            continue  # deleted meanwhile, or not the key's
    return found


async def _recent_events(v: Visitor, project: str | None) -> list[Event]:
    if project is None or not v.can("events.list", project):
        return []
    last = await v.api.events.last_sequence(project=project)
    page_ = await v.api.events.list(
        after=max(0, last - RECENT_EVENTS), limit=RECENT_EVENTS, project=project
    )
    return list(reversed(page_.items))


async def _jobs(v: Visitor) -> list[Any] | None:
    """Running migrations and re-embedding runs, for server admins."""
    if not v.can("jobs.list"):
        return None
    return list((await v.api.jobs.list(status="running", limit=20)).items)


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
