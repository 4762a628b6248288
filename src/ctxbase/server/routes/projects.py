"""``/projects``: the projects of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ctxbase.records import Page, Project, ProjectIn, ProjectPatch
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["projects"])


@declared(router, "projects.create")
def create_project(body: ProjectIn, store: StoreDep) -> Project:
    return store.projects.create(body.slug, name=body.name, settings=body.settings)


@declared(router, "projects.list")
def list_projects(
    store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[Project]:
    return store.projects.list(limit=limit, cursor=cursor)


@declared(router, "projects.get")
def get_project(project: ProjectSlug, store: StoreDep) -> Project:
    return store.projects.get(project)


@declared(router, "projects.update")
def update_project(project: ProjectSlug, body: ProjectPatch, store: StoreDep) -> Project:
    return store.projects.update(project, name=body.name, settings=body.settings)


@declared(router, "projects.delete")
def delete_project(project: ProjectSlug, store: StoreDep) -> Response:
    store.projects.delete(project)
    return Response(status_code=204)
