"""``/health`` and ``/ready``: is the server up, and can it serve?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import ctxbase
from ctxbase.api.models import DatabaseHealth, Health, Readiness
from ctxbase.db.diagnostics import UNFINISHED_MIGRATION, ConnectionReport
from ctxbase.server.routing import declared

router = APIRouter(tags=["health"])


def _health_of(report: ConnectionReport) -> Health:
    return Health(
        status=report.status,
        version=ctxbase.__version__,
        database=DatabaseHealth(**report.model_dump(include=set(DatabaseHealth.model_fields))),
        pgvector=report.pgvector,
        problems=report.problems,
    )


@declared(
    router,
    "health",
    responses={503: {"model": Health, "description": "The database cannot be used"}},
)
def health(request: Request) -> JSONResponse:
    """Database status, pgvector and schema revision. 200 while usable, 503 when not."""
    report = request.app.state.store.check_connection()
    body = _health_of(report)
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if not report.ok else 200)


@declared(router, "ready", responses={503: {"model": Readiness, "description": "Not ready"}})
def ready(request: Request) -> JSONResponse:
    """Ready when the database answers, its schema is at head, and no migration into it
    has stopped half-way (it would serve part of the data as the whole)."""
    report = request.app.state.store.check_connection()
    reason = None
    unfinished = [p for p in report.problems if p.code == UNFINISHED_MIGRATION]
    if not report.ok:
        reason = report.problems[0].message if report.problems else "database unavailable"
    elif report.pending_migrations:
        reason = "schema migrations are pending"
    elif unfinished:
        reason = unfinished[0].message
    body = Readiness(ready=reason is None, reason=reason)
    return JSONResponse(body.model_dump(), status_code=200 if reason is None else 503)
