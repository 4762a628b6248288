"""``/health`` and ``/ready``: is the server up, and can it serve?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import ctxbase
from ctxbase.api.models import DatabaseHealth, Health, Readiness
from ctxbase.db.diagnostics import UNFINISHED_MIGRATION, ConnectionReport, ProblemReport
from ctxbase.server.routing import declared
from ctxbase.store import Store
from ctxbase.store.health import EmbedderReport, RedisReport

router = APIRouter(tags=["health"])

EMBEDDER_DOWN = "embedder_down"
REDIS_DOWN = "redis_unreachable"


def _health_of(
    report: ConnectionReport, embedder: EmbedderReport, redis: RedisReport | None
) -> Health:
    problems = list(report.problems)
    if embedder.status == "down":
        problems.append(
            ProblemReport(
                code=EMBEDDER_DOWN,
                message=f"The embedding provider of {embedder.model} fails: {embedder.error}",
                hint="writes are stored and queued for a vector; they are embedded once it "
                "answers (or run `ctxbase embed`)",
            )
        )
    if redis is not None and redis.status == "down":
        problems.append(
            ProblemReport(
                code=REDIS_DOWN,
                message=f"Redis cannot be reached: {redis.error}",
                hint="deliveries by Redis are retried until it answers (CTXBASE_REDIS_URL)",
            )
        )
    services_down = embedder.status == "down" or (redis is not None and redis.status == "down")
    status = "degraded" if report.status == "ok" and services_down else report.status
    return Health(
        status=status,
        version=ctxbase.__version__,
        database=DatabaseHealth(**report.model_dump(include=set(DatabaseHealth.model_fields))),
        pgvector=report.pgvector,
        embedder=embedder,
        redis=redis,
        problems=problems,
    )


@declared(
    router,
    "health",
    responses={503: {"model": Health, "description": "The database cannot be used"}},
)
def health(request: Request) -> JSONResponse:
    """Database status, pgvector and schema revision, the embedder (model, loaded,
    backlog) and Redis when used. 200 while the database is usable (`degraded` when the
    embedder or Redis is down), 503 when it is not."""
    store: Store = request.app.state.store
    report = store.check_connection()
    body = _health_of(report, store.check_embedder(), store.check_redis())
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
