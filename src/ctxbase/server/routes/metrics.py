"""``/metrics``: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ctxbase.server.metrics import CONTENT_TYPE
from ctxbase.server.routing import declared

router = APIRouter(tags=["health"])


@declared(
    router,
    "metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Request count and latency by route and status, database query latency, pool in
    use / idle, and stored rows per kind."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
