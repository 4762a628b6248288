"""Who an MCP request acts as, in which project, and what it may call.

Over HTTP the caller is the API key of the request (``Authorization: Bearer`` or
``X-API-Key``), authenticated by the server's gate exactly as for the REST API; over
stdio it is the key of the ``mcp_api_key`` setting, or, without one, the local library's
own full access (the process already holds the database URL).

The project is never a tool argument a model could change. It is, in order: the only
project a key is limited to; the ``X-Ctxbase-Project`` header of the HTTP connection (set
by whoever configures the client); the ``mcp_project`` setting. A key limited to other
projects is refused it (404, as over REST). Each tool then needs its operation's rule
(the role the REST route needs) and scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctxbase.api import Operation
from ctxbase.errors import NotFoundError, PermissionDeniedError, QuotaExceededError
from ctxbase.store.tenancy import Principal

if TYPE_CHECKING:
    from ctxbase.store import Store

PROJECT_HEADER = "x-ctxbase-project"


@dataclass(frozen=True)
class Caller:
    """A store seen as the caller may see it, the project its tools act in, and who it is
    (``principal`` None: the library's own, unlimited)."""

    store: Store
    project: str
    principal: Principal | None = None
    #: A tenant's usage (the server's cache), to hold writes to its quotas as REST does.
    usage: Callable[[str], dict[str, int]] | None = None

    @classmethod
    def of(
        cls,
        store: Store,
        principal: Principal | None,
        project: str,
        *,
        usage: Callable[[str], dict[str, int]] | None = None,
    ) -> Caller:
        if principal is None:
            return cls(store, project)
        from ctxbase.server.access import scope_of  # the server's, not needed by stdio

        scope = scope_of(principal)
        view = store if scope == store.scope else store.scoped(scope)
        return cls(view, project, principal, usage)

    @property
    def actor(self) -> str:
        """How memory histories name the writer."""
        return f"mcp:{self.principal.actor}" if self.principal is not None else "mcp"

    def check(self, op: Operation) -> None:
        """Raise the error a REST request of ``op`` by this caller would get."""
        principal = self.principal
        if principal is None or op.rule == "public":
            return
        from ctxbase.server.access import Gate

        Gate._check_role(op.rule, principal)  # the REST rules, one for both doors
        Gate._check_scope(op.scope, principal)

    def check_quota(self) -> None:
        """Refuse a write that adds items when the tenant is at an item or storage quota."""
        principal = self.principal
        if principal is None or self.usage is None:
            return
        quotas = principal.quotas
        if quotas.items is None and quotas.storage_bytes is None:
            return
        usage = self.usage(principal.tenant)
        for name in ("items", "storage_bytes"):
            limit = getattr(quotas, name)
            if limit is not None and usage[name] >= limit:
                raise QuotaExceededError(
                    f"Tenant {principal.tenant!r} is at its {name.replace('_', ' ')} quota"
                    f" ({limit})",
                    details={"quota": name, "limit": limit, "used": usage[name]},
                )

    def may(self, op: Operation) -> bool:
        try:
            self.check(op)
        except PermissionDeniedError:
            return False
        return True


def project_for(principal: Principal | None, asked: str | None, configured: str) -> str:
    """The project an MCP connection acts in (see the module's docstring)."""
    limited = principal.projects if principal is not None else None
    if limited is not None and asked is None and len(limited) == 1:
        return next(iter(limited))
    project = asked or configured
    if limited is not None and project not in limited:
        raise NotFoundError(f"No project {project!r}")
    return project
