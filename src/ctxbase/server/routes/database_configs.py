"""``/database-configs``: register, test, initialize, measure and activate databases.

Administration routes. Passwords are write-only and no response carries a connection
string."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from ctxbase.server import activation
from ctxbase.server.deps import audit
from ctxbase.store.databases import (
    DatabaseConfigIn,
    DatabaseConfigPatch,
    DatabaseConfigRecord,
    DatabaseConfigs,
    DatabaseTestReport,
    TableStatistics,
)

router = APIRouter(prefix="/database-configs", tags=["database configurations"])


class ConfigPage(BaseModel):
    items: list[DatabaseConfigRecord]
    next_cursor: str | None = None


class InitializeIn(BaseModel):
    require_pgvector: bool = Field(False, description="Fail, changing nothing, without pgvector.")


class Statistics(BaseModel):
    tables: list[TableStatistics]


def _configs(request: Request) -> DatabaseConfigs:
    return activation.home(request.app).databases


@router.post("", status_code=201, response_model=DatabaseConfigRecord, summary="Register")
def create_config(body: DatabaseConfigIn, request: Request) -> Any:
    created = _configs(request).add(body)
    audit(request, "database_config.add", created.name, kind=created.kind)
    return created


@router.get("", response_model=ConfigPage, summary="List registered databases")
def list_configs(request: Request) -> Any:
    return {"items": _configs(request).list(), "next_cursor": None}


@router.get("/{config_id}", response_model=DatabaseConfigRecord, summary="Get one")
def get_config(config_id: uuid.UUID, request: Request) -> Any:
    return _configs(request).get(config_id)


@router.patch("/{config_id}", response_model=DatabaseConfigRecord, summary="Change fields")
def update_config(config_id: uuid.UUID, body: DatabaseConfigPatch, request: Request) -> Any:
    fields = body.model_dump(exclude_unset=True, by_alias=True)
    updated = _configs(request).update(config_id, **fields)
    audit(request, "database_config.update", updated.name, fields=sorted(fields))
    return updated


@router.delete("/{config_id}", status_code=204, summary="Forget (the data is untouched)")
def delete_config(config_id: uuid.UUID, request: Request) -> Response:
    _configs(request).delete(config_id)
    audit(request, "database_config.remove", str(config_id))
    return Response(status_code=204)


@router.post("/{config_id}/test", response_model=DatabaseTestReport, summary="Test the connection")
def test_config(config_id: uuid.UUID, request: Request) -> Any:
    return _configs(request).test(config_id)


@router.post("/{config_id}/initialize", response_model=DatabaseTestReport, summary="Schema to head")
def initialize_config(
    config_id: uuid.UUID,
    request: Request,
    body: Annotated[InitializeIn | None, Body()] = None,
) -> Any:
    require = body.require_pgvector if body else False
    report = _configs(request).initialize(config_id, require_pgvector=require)
    audit(request, "database_config.initialize", str(config_id))
    return report


@router.get("/{config_id}/statistics", response_model=Statistics, summary="Rows and bytes")
def config_statistics(config_id: uuid.UUID, request: Request) -> Any:
    return {"tables": _configs(request).statistics(config_id)}


@router.post(
    "/{config_id}/activate",
    response_model=DatabaseConfigRecord,
    summary="Serve this database from now on (also after a restart)",
)
def activate_config(config_id: uuid.UUID, request: Request) -> Any:
    activated = activation.activate(request.app, config_id)
    audit(request, "database_config.activate", activated.name)
    return activated
