"""``/projects``: the projects of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ctxbase.records import Page, Project, ProjectIn, ProjectPatch
from ctxbase.server.deps import DEFAULT_LIMIT, Cursor, Limit, ProjectSlug, StoreDep

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=201, response_model=Project, summary="Create a project")
def create_project(body: ProjectIn, store: StoreDep) -> Project:
    return store.projects.create(body.slug, name=body.name, settings=body.settings)


@router.get("", response_model=Page[Project], summary="List projects")
def list_projects(
    store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[Project]:
    return store.projects.list(limit=limit, cursor=cursor)


@router.get("/{project}", response_model=Project, summary="Get a project")
def get_project(project: ProjectSlug, store: StoreDep) -> Project:
    return store.projects.get(project)


@router.patch("/{project}", response_model=Project, summary="Rename or reconfigure a project")
def update_project(project: ProjectSlug, body: ProjectPatch, store: StoreDep) -> Project:
    return store.projects.update(project, name=body.name, settings=body.settings)


@router.delete("/{project}", status_code=204, summary="Delete a project and all it holds")
def delete_project(project: ProjectSlug, store: StoreDep) -> Response:
    store.projects.delete(project)
    return Response(status_code=204)
