"""Dependencies shared by the routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel

from ctxbase.errors import InvalidInputError
from ctxbase.server.access import scope_of
from ctxbase.store import Store
from ctxbase.store.base import DEFAULT_PAGE, MAX_PAGE
from ctxbase.store.tenancy import Principal


def authorize(request: Request) -> Principal | None:
    """Authenticate and authorize the request by its route's rule (see ``access``), then
    refuse query parameters the route does not take; every route depends on it. None for
    public routes."""
    principal = request.app.state.gate.authorize(request, request.app.state.store)
    request.state.principal = principal
    unknown = sorted(set(request.query_params) - _query_names(request.scope.get("route")))
    if unknown:
        problems = [
            {"location": ["query", name], "message": "unknown parameter", "type": "extra_forbidden"}
            for name in unknown
        ]
        raise InvalidInputError("Unknown query parameter: " + ", ".join(unknown), details=problems)
    return principal


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters ``route`` takes, its dependencies' included (cached)."""
    names = _QUERY_NAMES.get(id(route))
    if names is None:
        found: set[str] = set()
        pending = [route.dependant] if isinstance(route, APIRoute) else []
        while pending:
            dependant = pending.pop()
            for param in dependant.query_params:
                model = param.field_info.annotation
                if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
                    found.update(f.alias or name for name, f in model.model_fields.items())
                else:
                    found.add(param.alias)
            pending.extend(dependant.dependencies)
        names = _QUERY_NAMES[id(route)] = frozenset(found)
    return names


PrincipalDep = Annotated[Principal | None, Depends(authorize)]


def get_store(request: Request, principal: PrincipalDep) -> Store:
    """The store as the caller may see it: its tenant, and its projects if limited
    (a view costs a few microseconds, so each request gets its own)."""
    store: Store = request.app.state.store
    scope = scope_of(principal)
    return store if scope == store.scope else store.scoped(scope)


StoreDep = Annotated[Store, Depends(get_store)]


def actor_of(principal: Principal | None) -> str:
    """How the audit log names the caller."""
    return principal.actor if principal is not None else "anonymous"


ProjectSlug = Annotated[
    str, Path(description="The project's slug, unique in the tenant.", examples=["default"])
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Actor = Annotated[
    str | None,
    Header(alias="X-Ctxbase-Agent", max_length=200, description="Who makes the change."),
]
DEFAULT_LIMIT = DEFAULT_PAGE


def metadata_filter(
    metadata: Annotated[
        str | None,
        Query(
            description='JSON object; keeps items whose metadata has these pairs, e.g. {"k":"v"}'
        ),
    ] = None,
) -> dict[str, Any] | None:
    if metadata is None:
        return None
    try:
        value = json.loads(metadata)
    except ValueError:
        raise InvalidInputError("metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be a JSON object")
    return value


MetadataFilter = Annotated[dict[str, Any] | None, Depends(metadata_filter)]


def audit(request: Request, action: str, target: str | None = None, **details: Any) -> None:
    """Record a server administration action of the request's caller in the audit log."""
    principal = getattr(request.state, "principal", None)
    store: Store = request.app.state.store
    store.audit.record(actor_of(principal), action, target, details=details)
