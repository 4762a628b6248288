"""Database settings: register databases (passwords write-only), test, initialize, measure
and activate them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from ctxbase.server.console.guard import Visitor, parse_uuid
from ctxbase.server.console.pages.common import (
    VisitorDep,
    act,
    delete_item,
    field,
    fragment,
    number_field,
    outcome,
    page,
    redirect,
)

router = APIRouter(prefix="/admin/databases")
SSL_MODES = ("", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@router.get("")
async def databases(v: VisitorDep) -> Response:
    configs = await v.api.databases.list()
    return await page(
        v,
        "databases.html",
        title="Databases",
        section="databases",
        configs=configs,
        ssl_modes=SSL_MODES,
    )


@router.post("")
async def add(v: VisitorDep) -> Response:
    added = await act(v, lambda: v.api.databases.add(**_config_fields(v)), "Database registered.")
    if added is None:
        return redirect(f"{v.base}/admin/databases")
    return redirect(f"{v.base}/admin/databases/{added.id}")


def _config_fields(v: Visitor) -> dict[str, Any]:
    """The fields of the add form that were filled in (the password is never echoed)."""
    kind = field(v, "kind") or "postgresql"
    fields: dict[str, Any] = {
        "name": field(v, "name") or "",
        "kind": kind,
        "description": field(v, "description") or "",
    }
    if kind == "sqlite":
        fields["sqlite_path"] = field(v, "sqlite_path")
        return fields
    for name in ("host", "database", "username", "sslmode"):
        fields[name] = field(v, name)
    fields["schema_name"] = field(v, "schema")
    fields["password"] = v.form.get("password") or None
    for name in ("port", "pool_size", "max_overflow"):
        fields[name] = number_field(v, name, int)
    return {k: value for k, value in fields.items() if value is not None}


@router.get("/{config_id}")
async def database(v: VisitorDep, config_id: str) -> Response:
    return await _detail(v, config_id)


async def _detail(v: Visitor, config_id: str, **extra: Any) -> Response:
    found = await v.api.databases.get(parse_uuid(config_id))
    return await page(v, "database.html", title=found.name, section="databases", c=found, **extra)


async def _report(
    v: Visitor, config_id: str, template: str, name: str, call: Any, **context: Any
) -> Response:
    """Run a test, an initialization or a measurement; show what it answers (as ``name``)
    or why it failed, with ``template`` in place with htmx, else on the database's page."""
    answer, error = await outcome(lambda: call)
    values = {name: answer, "error": error, **context}
    if v.request.headers.get("hx-request"):
        return fragment(v, template, **values)
    return await _detail(v, config_id, **values)


@router.post("/{config_id}/test")
async def test(v: VisitorDep, config_id: str) -> Response:
    ref = parse_uuid(config_id)
    call = v.api.databases.test(ref)
    return await _report(v, config_id, "_db_report.html", "report", call, what="Test")


@router.post("/{config_id}/initialize")
async def initialize(v: VisitorDep, config_id: str) -> Response:
    ref = parse_uuid(config_id)
    require = v.form.get("require_pgvector") == "on"
    call = v.api.databases.initialize(ref, require_pgvector=require)
    return await _report(v, config_id, "_db_report.html", "report", call, what="Initialize")


@router.get("/{config_id}/statistics")
async def statistics(v: VisitorDep, config_id: str) -> Response:
    ref = parse_uuid(config_id)
    call = v.api.databases.statistics(ref)
    return await _report(v, config_id, "_db_statistics.html", "tables", call)


@router.post("/{config_id}/activate")
async def activate(v: VisitorDep, config_id: str) -> Response:
    ref = parse_uuid(config_id)
    await act(
        v,
        lambda: v.api.databases.activate(ref),
        "Activated: the server now serves this database.",
    )
    return redirect(f"{v.base}/admin/databases/{ref}")


@router.post("/{config_id}/delete")
async def delete(v: VisitorDep, config_id: str) -> Response:
    ref = parse_uuid(config_id)
    return await delete_item(
        v,
        lambda: v.api.databases.delete(ref),
        "Configuration forgotten (the database itself is untouched).",
        f"{v.base}/admin/databases/{ref}",
    )
