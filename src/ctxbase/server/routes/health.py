"""``/health`` and ``/ready``: is the server up, and can it serve?"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import ctxbase
from ctxbase.db.diagnostics import ConnectionReport, PgvectorReport, ProblemReport

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    status: Literal["ok", "degraded", "error"]
    backend: str
    server_version: str | None
    schema_revision: str | None
    head_revision: str
    pending_migrations: list[str]
    vector_storage: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded", "error"]
    version: str
    database: DatabaseHealth
    pgvector: PgvectorReport | None
    problems: list[ProblemReport]


class Readiness(BaseModel):
    ready: bool
    reason: str | None = None


def _health_of(report: ConnectionReport) -> Health:
    return Health(
        status=report.status,
        version=ctxbase.__version__,
        database=DatabaseHealth(**report.model_dump(include=set(DatabaseHealth.model_fields))),
        pgvector=report.pgvector,
        problems=report.problems,
    )


@router.get(
    "/health",
    response_model=Health,
    summary="Health of the server and its database",
    responses={503: {"model": Health, "description": "The database cannot be used"}},
)
def health(request: Request) -> JSONResponse:
    """Database status, pgvector and schema revision. 200 while usable, 503 when not."""
    report = request.app.state.store.check_connection()
    body = _health_of(report)
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if not report.ok else 200)


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Whether the server can take traffic",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def ready(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at head."""
    report = request.app.state.store.check_connection()
    reason = None
    if not report.ok:
        reason = report.problems[0].message if report.problems else "database unavailable"
    elif report.pending_migrations:
        reason = "schema migrations are pending"
    body = Readiness(ready=reason is None, reason=reason)
    return JSONResponse(body.model_dump(), status_code=200 if reason is None else 503)
