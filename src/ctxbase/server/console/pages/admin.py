"""Administration: tenants, projects, API keys (shown once), the audit log, re-embedding."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from ctxbase.server.console.pages.common import (
    PAGE,
    VisitorDep,
    act,
    field,
    finished,
    json_field,
    listing,
    number_field,
    page,
    redirect,
)

router = APIRouter(prefix="/admin")
ROLES = ("reader", "writer", "admin")


# --- tenants ------------------------------------------------------------------------------


@router.get("/tenants")
async def tenants(v: VisitorDep, cursor: str | None = None) -> Response:
    return await listing(
        v,
        "tenants",
        lambda: v.api.tenants.list(limit=PAGE, cursor=cursor),
        title="Tenants",
        cursor=cursor,
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
    return await listing(
        v,
        "projects",
        lambda: v.api.projects.list(limit=PAGE, cursor=cursor),
        title="Projects",
        cursor=cursor,
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
    return await listing(
        v,
        "keys",
        lambda: v.api.keys.list(tenant=tenant or None, limit=PAGE, cursor=cursor),
        title="API keys",
        cursor=cursor,
        filters={"tenant": tenant},
        roles=ROLES,
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
    return await listing(
        v,
        "audit",
        lambda: v.api.audit.list(action=action or None, limit=PAGE, cursor=cursor),
        title="Audit log",
        cursor=cursor,
        filters={"action": action},
    )


# --- embeddings ---------------------------------------------------------------------------


@router.get("/embeddings")
async def embeddings(v: VisitorDep) -> Response:
    current = await v.api.embeddings.status()
    jobs = []
    if v.can("jobs.list"):
        jobs = (await v.api.jobs.list(kind="reembed", limit=10)).items
    return await page(
        v, "embeddings.html", title="Embeddings", section="embeddings", current=current, jobs=jobs
    )


@router.post("/embeddings/reembed")
async def reembed(v: VisitorDep) -> Response:
    """Start re-embedding, then follow the job on its page."""
    started = await act(
        v,
        lambda: v.api.embeddings.start_reembed(
            field(v, "model") or "",
            drop_old=v.form.get("drop_old") == "on",
            batch_size=number_field(v, "batch_size", int) or 256,
        ),
        "Re-embedding started.",
    )
    if isinstance(started, dict) and "id" in started:
        return redirect(f"{v.base}/admin/jobs/{started['id']}")
    return redirect(f"{v.base}/admin/embeddings")
