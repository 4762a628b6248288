"""``/database-configs``: register, test, initialize, measure and activate databases.

Administration routes. Passwords are write-only and no response carries a connection
string."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from ctxbase.api.models import InitializeIn
from ctxbase.server import activation
from ctxbase.server.deps import audit
from ctxbase.server.routing import declared
from ctxbase.store.databases import (
    DatabaseConfigIn,
    DatabaseConfigPatch,
    DatabaseConfigs,
)

router = APIRouter(tags=["database configurations"])


def _configs(request: Request) -> DatabaseConfigs:
    return activation.home(request.app).databases


@declared(router, "databases.add")
def create_config(body: DatabaseConfigIn, request: Request) -> Any:
    created = _configs(request).add(**body.model_dump(exclude_unset=True))
    audit(request, "database_config.add", created.name, kind=created.kind)
    return created


@declared(router, "databases.list")
def list_configs(request: Request) -> Any:
    return {"items": _configs(request).list(), "next_cursor": None}


@declared(router, "databases.get")
def get_config(config_id: uuid.UUID, request: Request) -> Any:
    return _configs(request).get(config_id)


@declared(router, "databases.update")
def update_config(config_id: uuid.UUID, body: DatabaseConfigPatch, request: Request) -> Any:
    fields = body.model_dump(exclude_unset=True)
    updated = _configs(request).update(config_id, **fields)
    audit(request, "database_config.update", updated.name, fields=sorted(fields))
    return updated


@declared(router, "databases.delete")
def delete_config(config_id: uuid.UUID, request: Request) -> Response:
    _configs(request).delete(config_id)
    audit(request, "database_config.remove", str(config_id))
    return Response(status_code=204)


@declared(router, "databases.test")
def test_config(config_id: uuid.UUID, request: Request) -> Any:
    return _configs(request).test(config_id)


@declared(router, "databases.initialize")
def initialize_config(
    config_id: uuid.UUID,
    request: Request,
    body: Annotated[InitializeIn | None, Body()] = None,
) -> Any:
    require = body.require_pgvector if body else False
    report = _configs(request).initialize(config_id, require_pgvector=require)
    audit(request, "database_config.initialize", str(config_id))
    return report


@declared(router, "databases.statistics")
def config_statistics(config_id: uuid.UUID, request: Request) -> Any:
    return {"tables": _configs(request).statistics(config_id)}


@declared(router, "databases.activate")
def activate_config(config_id: uuid.UUID, request: Request) -> Any:
    activated = activation.activate(request.app, config_id)
    audit(request, "database_config.activate", activated.name)
    return activated
