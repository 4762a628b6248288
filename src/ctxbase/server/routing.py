"""Routes from the operation declarations.

``@declared(router, "memories.add")`` gives a handler its method, path, status, response
model, summary and example from the declaration, so a route cannot drift from what the
clients and the access table are built from. The handler itself stays a plain FastAPI
function (its parameters are the request's); the test suite checks that its body and
query parameters are the declared ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from ctxbase.api import operation

F = TypeVar("F", bound=Callable[..., Any])

#: Operations served by a hand-written handler; the others get a generated one
#: (:mod:`ctxbase.server.routes.generated`).
HAND_WRITTEN: set[str] = set()


def declared(router: APIRouter, *names: str, **options: Any) -> Callable[[F], F]:
    """Register the decorated handler as the route of the operations ``names`` (several
    operations may share one route, e.g. appending one message or many)."""
    op = operation(names[0])
    HAND_WRITTEN.update(names)
    extra: dict[str, Any] = dict(options.pop("openapi_extra", None) or {})
    if op.request_example is not None:
        example = {"content": {"application/json": {"example": op.request_example}}}
        extra.setdefault("requestBody", example)
    summary = op.summary if len(names) == 1 else options.pop("summary", op.summary)
    return router.api_route(
        op.path,
        methods=[op.method],
        status_code=op.status,
        response_model=None
        if op.status == 204
        else options.pop("response_model", op.response_model),
        summary=summary,
        operation_id=op.name.replace(".", "_"),
        openapi_extra={**extra, "x-ctxbase-operations": list(names)},
        **options,
    )
