"""The routes made from the declarations alone.

Every declared operation with a route and no hand-written handler (see
:func:`ctxbase.server.routing.declared`) is served here by one generic handler: it takes
the path ids, the body model, the query model and the headers the declaration names,
calls the Store method of the same name with them, and answers the declared result.
Hand-written routes remain only where HTTP needs more than a call: headers in and out
(state), one-or-many bodies, streams, jobs and the server's own state.

Call :func:`router` after importing the hand-written routers: it serves what they left.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response

from ctxbase.api import OPERATIONS, Operation
from ctxbase.server.deps import PrincipalDep, ProjectSlug, StoreDep, actor_of
from ctxbase.server.routing import HAND_WRITTEN, declared

_P = inspect.Parameter


def _path_type(annotation: Any) -> Any:
    return uuid.UUID if "UUID" in repr(annotation) else str


def _parameters(op: Operation) -> list[inspect.Parameter]:
    params = [
        _P("store", _P.KEYWORD_ONLY, annotation=StoreDep),
        _P("principal", _P.KEYWORD_ONLY, annotation=PrincipalDep),
    ]
    for arg, where in op.parameters():
        if where == "path":
            annotation = Annotated[_path_type(arg.annotation), Path()]  # type: ignore[valid-type]
            params.append(_P(arg.http_name, _P.KEYWORD_ONLY, annotation=annotation))
        elif where == "project":
            params.append(_P("project", _P.KEYWORD_ONLY, annotation=ProjectSlug))
        elif where == "header":
            header = Header(alias=arg.header, max_length=200)
            annotation = Annotated[arg.annotation, header]
            params.append(_P(arg.name, _P.KEYWORD_ONLY, annotation=annotation, default=None))
    if op.body is not None:
        params.append(_P("body", _P.KEYWORD_ONLY, annotation=Annotated[op.body, Body()]))
    if op.query is not None:
        params.append(_P("query", _P.KEYWORD_ONLY, annotation=Annotated[op.query, Query()]))
    return params


def _handler(op: Operation) -> Callable[..., Any]:
    plan = op.parameters()
    positional = {a.name for a in op.positional()}
    domain, _, method_name = op.name.rpartition(".")

    def handle(**request: Any) -> Any:
        store = request["store"]
        given: dict[str, Any] = {}
        if op.body is not None:
            given.update(request["body"].model_dump(exclude_unset=True))
        if op.query is not None:
            given.update(request["query"].model_dump(exclude_unset=True))
        for arg, where in plan:
            if where == "path":
                given[arg.name] = request[arg.http_name]
            elif where == "project":
                given["project"] = request["project"]
            elif where == "header":
                given[arg.name] = request[arg.name]
            elif where == "server":
                given[arg.name] = actor_of(request["principal"])
        args = [given.pop(a.name) for a in op.positional() if a.name in given]
        method = getattr(getattr(store, domain) if domain else store, method_name)
        result = method(*args, **{k: v for k, v in given.items() if k not in positional})
        if op.status == 204:
            return Response(status_code=204)
        return op.wire.wrap(result) if op.wire is not None else result

    handle.__name__ = op.name.replace(".", "_")
    handle.__signature__ = inspect.Signature(_parameters(op))  # type: ignore[attr-defined]
    return handle


@functools.cache
def router() -> APIRouter:
    """A route for every declared operation the hand-written routers do not serve (call it
    after importing them; made once per process)."""
    generated = APIRouter()
    for op in OPERATIONS.values():
        if op.on != "library" and op.name not in HAND_WRITTEN:
            if op.on == "rest":
                raise RuntimeError(f"{op.name} is served only over HTTP but has no handler")
            declared(generated, op.name, tags=[op.domain or op.name])(_handler(op))
    return generated
