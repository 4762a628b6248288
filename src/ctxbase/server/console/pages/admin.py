"""Administration: tenants, projects, API keys (shown once), the audit log, re-embedding."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from ctxbase.errors import CtxbaseError, NotFoundError
from ctxbase.server.console.guard import Visitor
from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    field,
    finished,
    json_field,
    number_field,
    page,
    query_string,
    redirect,
)
from ctxbase.server.console.render import ENV

router = APIRouter(prefix="/admin")
ROLES = ("reader", "writer", "admin")
POLL_SECONDS = 0.5


# --- tenants ------------------------------------------------------------------------------


@router.get("/tenants")
async def tenants(v: VisitorDep, cursor: str | None = None) -> Response:
    listed = await v.api.tenants.list(limit=PAGE, cursor=cursor)
    return await page(
        v,
        "tenants.html",
        title="Tenants",
        section="tenants",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        here=f"{v.base}/admin/tenants",
    )


@router.post("/tenants")
async def create_tenant(v: VisitorDep) -> Response:
    await act(
        v,
        lambda: v.api.tenants.create(
            field(v, "slug") or "",
            name=field(v, "name"),
            plan=field(v, "plan") or "free",
            quotas=json_field(v, "quotas", default={}),
        ),
        "Tenant created.",
    )
    return redirect(f"{v.base}/admin/tenants")


@router.post("/tenants/{tenant}/active")
async def set_tenant_active(v: VisitorDep, tenant: str) -> Response:
    active = v.form.get("is_active") == "true"
    await act(
        v,
        lambda: v.api.tenants.update(tenant, is_active=active),
        f"Tenant {tenant} {'activated' if active else 'deactivated: its keys stop at once'}.",
    )
    return redirect(f"{v.base}/admin/tenants")


# --- projects -----------------------------------------------------------------------------


@router.get("/projects")
async def projects(v: VisitorDep, cursor: str | None = None) -> Response:
    listed = await v.api.projects.list(limit=PAGE, cursor=cursor)
    return await page(
        v,
        "projects.html",
        title="Projects",
        section="projects",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        here=f"{v.base}/admin/projects",
    )


@router.post("/projects")
async def create_project(v: VisitorDep) -> Response:
    await act(
        v,
        lambda: v.api.projects.create(field(v, "slug") or "", name=field(v, "name")),
        "Project created.",
    )
    return redirect(f"{v.base}/admin/projects")


@router.post("/projects/{project}/delete")
async def delete_project(v: VisitorDep, project: str) -> Response:
    await act(
        v,
        lambda: finished(v.api.projects.delete(project)),
        f"Project {project} deleted with everything it held.",
    )
    return redirect(f"{v.base}/admin/projects")


# --- keys ---------------------------------------------------------------------------------


@router.get("/keys")
async def keys(v: VisitorDep, tenant: str = "", cursor: str | None = None) -> Response:
    listed = await v.api.keys.list(tenant=tenant or None, limit=PAGE, cursor=cursor)
    return await page(
        v,
        "keys.html",
        title="API keys",
        section="keys",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        tenant=tenant,
        roles=ROLES,
        here=f"{v.base}/admin/keys{query_string(tenant=tenant)}",
    )


@router.post("/keys")
async def create_key(v: VisitorDep) -> Response:
    """Create a key and show it this once: the page is not cached and the key is not kept."""
    created = await act(
        v,
        lambda: v.api.keys.create(
            tenant=field(v, "tenant"),
            role=field(v, "role") or "reader",
            name=field(v, "name") or "",
            projects=_slugs(field(v, "projects")),
            expires_in_days=number_field(v, "expires_in_days", int),
        ),
        "",  # the page that shows the key says so
    )
    if created is None:
        return redirect(f"{v.base}/admin/keys")
    return await page(v, "key_created.html", title="Key created", section="keys", key=created)


def _slugs(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [slug.strip() for slug in text.replace("\n", ",").split(",") if slug.strip()]


@router.post("/keys/{key_id}/revoke")
async def revoke_key(v: VisitorDep, key_id: str) -> Response:
    await act(
        v, lambda: finished(v.api.keys.revoke(key_id)), "Key revoked: it stops working at once."
    )
    return redirect(f"{v.base}/admin/keys")


# --- audit --------------------------------------------------------------------------------


@router.get("/audit")
async def audit(v: VisitorDep, action: str = "", cursor: str | None = None) -> Response:
    listed = await v.api.audit.list(action=action or None, limit=PAGE, cursor=cursor)
    return await page(
        v,
        "audit.html",
        title="Audit log",
        section="audit",
        items=listed.items,
        next_cursor=listed.next_cursor,
        cursor=cursor,
        action=action,
        here=f"{v.base}/admin/audit{query_string(action=action)}",
    )


# --- embeddings ---------------------------------------------------------------------------


@router.get("/embeddings")
async def embeddings(v: VisitorDep) -> Response:
    current = await v.api.embeddings.status()
    job = await _reembed_status(v, v.api) if v.can("embeddings.reembed_status") else None
    return await page(
        v,
        "embeddings.html",
        title="Embeddings",
        section="embeddings",
        current=current,
        panel=_reembed_panel(v, job),
        running=bool(job and job.get("status") == "running"),
    )


@router.post("/embeddings/reembed")
async def reembed(v: VisitorDep) -> Response:
    await act(
        v,
        lambda: v.api.embeddings.start_reembed(
            field(v, "model") or "",
            drop_old=v.form.get("drop_old") == "on",
            batch_size=number_field(v, "batch_size", int) or 256,
        ),
        "Re-embedding started.",
    )
    return redirect(f"{v.base}/admin/embeddings")


@router.get("/embeddings/reembed/stream")
async def reembed_stream(v: VisitorDep) -> EventSourceResponse:
    if not v.can("embeddings.reembed_status"):
        raise NotFoundError("No re-embedding job")
    return EventSourceResponse(_reembed_panels(v), ping=15, headers={"Cache-Control": "no-store"})


async def _reembed_panels(v: Visitor) -> AsyncIterator[dict[str, str]]:
    api = v.open_api()
    try:
        last = None
        while True:
            job = await _reembed_status(v, api)
            html = _reembed_panel(v, job)
            if html != last:
                last = html
                yield {"event": "panel", "data": html}
            if not job or job.get("status") != "running":
                yield {"event": "end", "data": json.dumps({"status": (job or {}).get("status")})}
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await api.aclose()


async def _reembed_status(v: Visitor, api: Any) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] | None = await api.embeddings.reembed_status()
    except NotFoundError:
        return None
    except CtxbaseError as error:
        if error.http_status in (401, 403):
            raise
        return None
    return found


def _reembed_panel(v: Visitor, job: dict[str, Any] | None) -> str:
    return ENV.get_template("_reembed_panel.html").render(base=v.base, v=v, job=job)
