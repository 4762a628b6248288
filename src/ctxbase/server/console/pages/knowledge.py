"""The data browser, part two: context units with their version chain and diffs, and agent
state by namespace with compare-and-set edits."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from ctxbase.records import ContextUnit
from ctxbase.server.console.guard import parse_uuid
from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    delete_item,
    field,
    finished,
    json_field,
    listing,
    number_field,
    opened,
    page,
    query_string,
    redirect,
)

router = APIRouter(prefix="/p/{project}")


# --- context units ------------------------------------------------------------------------


@router.get("/contexts")
async def contexts(
    v: VisitorDep,
    project: str,
    source_type: str = "",
    name: str = "",
    cursor: str | None = None,
) -> Response:
    return await listing(
        v,
        "contexts",
        lambda: v.api.contexts.list(
            source_type=source_type or None,
            name=name or None,
            limit=PAGE,
            cursor=cursor,
            project=project,
        ),
        title="Context units",
        cursor=cursor,
        filters={"source_type": source_type, "name": name},
        project=project,
    )


@router.get("/contexts/{context_id}")
async def context(
    v: VisitorDep, project: str, context_id: str, old: int | None = None, new: int | None = None
) -> Response:
    """A unit's version chain; the diff between versions ``old`` and ``new`` (by default,
    the shown version against the one before it)."""
    opened(v, project)
    cid = parse_uuid(context_id)
    shown, versions = await asyncio.gather(
        v.api.contexts.get(cid, project=project),
        v.api.contexts.versions(cid, project=project),
    )
    by_number = {unit.version: unit for unit in versions}
    after = by_number.get(new or shown.version, shown)
    before = by_number.get(old if old is not None else after.version - 1)
    return await page(
        v,
        "context.html",
        title=shown.name,
        project=project,
        section="contexts",
        unit=shown,
        versions=versions,
        latest=versions[-1] if versions else shown,
        before=before,
        after=after,
    )


@router.post("/contexts/{context_id}/update")
async def update_context(v: VisitorDep, project: str, context_id: str) -> Response:
    cid = parse_uuid(context_id)
    updated: ContextUnit | None = await act(
        v,
        lambda: v.api.contexts.update(cid, content=v.form.get("content", ""), project=project),
        "New version stored.",
    )
    target = updated.id if updated is not None else cid
    return redirect(f"{v.base}/p/{project}/contexts/{target}")


@router.post("/contexts/{context_id}/delete")
async def delete_context(v: VisitorDep, project: str, context_id: str) -> Response:
    cid = parse_uuid(context_id)
    return await delete_item(
        v,
        lambda: v.api.contexts.delete(cid, project=project),
        "Context unit deleted, every version of it.",
        f"{v.base}/p/{project}/contexts/{cid}",
    )


# --- state --------------------------------------------------------------------------------


@router.get("/state")
async def state(
    v: VisitorDep, project: str, namespace: str = "", cursor: str | None = None
) -> Response:
    return await listing(
        v,
        "state",
        lambda: v.api.state.list(namespace=namespace, limit=PAGE, cursor=cursor, project=project),
        title="State",
        cursor=cursor,
        filters={"namespace": namespace},
        project=project,
        namespace=namespace,
        crumbs=_crumbs(namespace),
    )


def _crumbs(namespace: str) -> list[tuple[str, str]]:
    """``a/b/c`` → ``[("a", "a"), ("b", "a/b"), ("c", "a/b/c")]``."""
    parts = [part for part in namespace.split("/") if part]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@router.post("/state/put")
async def put_state(v: VisitorDep, project: str) -> Response:
    """Write an entry with compare-and-set: the version the form was made from must still
    be the entry's (0: only if it does not exist yet)."""
    namespace = (field(v, "namespace") or "").strip("/")
    back = f"{v.base}/p/{project}/state{query_string(namespace=namespace)}"
    await act(v, lambda: _put(v, project, namespace), "Saved.")
    return redirect(back)


async def _put(v: Any, project: str, namespace: str) -> Any:
    return await v.api.state.put(
        field(v, "key") or "",
        json_field(v, "value", default=None),
        namespace=namespace,
        ttl_seconds=number_field(v, "ttl_seconds", int),
        expected_version=number_field(v, "expected_version", int),
        project=project,
    )


@router.post("/state/delete")
async def delete_state(v: VisitorDep, project: str) -> Response:
    namespace = (field(v, "namespace") or "").strip("/")
    await act(
        v,
        lambda: finished(
            v.api.state.delete(
                field(v, "key") or "",
                namespace=namespace,
                expected_version=number_field(v, "expected_version", int),
                project=project,
            )
        ),
        "Entry deleted.",
    )
    return redirect(f"{v.base}/p/{project}/state{query_string(namespace=namespace)}")
