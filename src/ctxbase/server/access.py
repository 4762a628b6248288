"""Who may call what: one rule per route, checked before any handler runs.

Every operation of the API declares its rule (:mod:`ctxbase.api`), gathered in
:data:`RULES`; a route without one is refused
to everybody (and a test walking the OpenAPI document fails), so a new route cannot ship
unguarded by accident. The rules:

- ``public``: no key (health checks);
- ``read``: any key of the tenant (reading and searching);
- ``write``: writer and admin keys;
- ``admin``: admin keys, over their own tenant (projects, keys, audit log);
- ``server``: admin keys of the operator tenant (tenants, database configurations,
  migrations, re-embedding, metrics of every tenant).

Beside its role, a key may be limited to *scopes* (:mod:`ctxbase.api.scopes`): every
route needs its operation's scope (``memories:write`` to add a memory), and a key holding
scopes but not that one is refused 403 whatever its role. A key without scopes holds
them all. A route that does more than its operation in some requests checks the other
operation too (:meth:`Gate.require`: a subscription stream resumed with `Last-Event-ID`
acknowledges, as ``subscriptions.ack`` does).

A key's tenant is its whole world: projects are looked up inside it, so another tenant's
project or record is simply not found (404), as is a project a key is not limited to.

The key is checked before anything reads the request's body: :class:`AuthenticateFirst`
authenticates every request of a method that carries one, so a request without a valid
key is answered 401 whatever its body holds. Keys are looked up through a
:class:`~ctxbase.server.keycache.KeyCache`, which a revocation empties on every process.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

from ctxbase.api import Operation, Rule, access_rules
from ctxbase.api.scopes import holds, route_scopes
from ctxbase.config import Settings
from ctxbase.db.schema import utcnow
from ctxbase.errors import (
    AuthenticationError,
    ConfigurationError,
    CtxbaseError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
)
from ctxbase.records import Quotas
from ctxbase.server.errors import ctxbase_error_response
from ctxbase.server.keycache import KeyCache
from ctxbase.server.ratelimit import FailureLimiter, KeyRateLimiter
from ctxbase.store import Store
from ctxbase.store.base import Scope
from ctxbase.store.tenancy import OPERATOR_TENANT, Principal

log = logging.getLogger("ctxbase.server")

#: ``(method, path) -> rule`` of every route, from the operation declarations.
RULES: dict[tuple[str, str], Rule] = access_rules()
#: ``(method, path) -> scope`` of every route that needs a key.
SCOPES: dict[tuple[str, str], str] = route_scopes()
_ALLOWED_ROLES: dict[Rule, frozenset[str]] = {
    "read": frozenset({"reader", "writer", "admin"}),
    "write": frozenset({"writer", "admin"}),
    "admin": frozenset({"admin"}),
    "server": frozenset({"admin"}),
}
#: Writes that add stored items, refused when the tenant is over an item or storage quota.
_QUOTA_CHECKED = {"POST", "PUT"}
#: Methods whose requests carry a body, and no public route takes: their key is checked
#: before the body is read.
KEY_FIRST_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"}) - {
    method for (method, _path), rule in RULES.items() if rule == "public"
}
#: The ASGI scope key where a request's principal waits, once authenticated, for the
#: route's own checks.
_PRINCIPAL = "ctxbase.principal"
_TOUCH_EVERY_SECONDS = 60.0
DEVELOPMENT_PRINCIPAL = Principal(
    key_id=None,
    tenant=OPERATOR_TENANT,
    tenant_id=None,
    role="admin",
    projects=None,
    prefix="auth-disabled",
    quotas=Quotas(),
)


def rule_for(method: str, route: BaseRoute | None) -> Rule | None:
    path = getattr(route, "path_format", None)
    return RULES.get((method, path)) if path is not None else None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_auth_mode(settings: Settings) -> None:
    """Refuse to serve without authentication anywhere but on a loopback address."""
    if settings.auth == "disabled" and not is_loopback(settings.host):
        raise ConfigurationError(
            f"CTXBASE_AUTH=disabled is allowed only on a loopback address, not {settings.host}",
            hint="create a key with `ctxbase keys create` and remove CTXBASE_AUTH",
        )


def warn_if_open(settings: Settings) -> None:
    """Say loudly, when the server starts, that nobody is asked for a key."""
    if settings.auth == "disabled":
        banner = "!" * 78
        log.warning(
            "\n%s\n!! AUTHENTICATION IS DISABLED (CTXBASE_AUTH=disabled): every request acts as"
            " the\n!! operator's admin. Development only; never expose this server.\n%s",
            banner,
            banner,
        )


class Gate:
    """The authentication, authorization, rate and quota checks of one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.failures = FailureLimiter(settings.auth_failures_per_minute, window_seconds=60.0)
        self.rates = KeyRateLimiter(settings.rate_limit_per_minute)
        self.keys = KeyCache()
        self._touched: dict[object, float] = {}
        self._lock = threading.Lock()

    def authorize(self, request: Request, store: Store) -> Principal | None:
        """The principal a request acts as, after every check; raises the error to answer."""
        rule = rule_for(request.method, request.scope.get("route"))
        if rule is None:
            log.error("No access rule for %s %s: refused", request.method, request.url.path)
            raise PermissionDeniedError("This operation has no access rule")
        if rule == "public":
            return None
        principal: Principal = (
            DEVELOPMENT_PRINCIPAL
            if self.settings.auth == "disabled"
            else request.scope.get(_PRINCIPAL) or self.authenticate(request, store)
        )
        self._check_role(rule, principal)
        path = str(getattr(request.scope.get("route"), "path_format", ""))
        self._check_scope(SCOPES.get((request.method, path)), principal)
        project = request.path_params.get("project")
        limited = principal.projects
        if project is not None and limited is not None and project not in limited:
            raise NotFoundError(f"No project {project!r}")
        if rule in ("write", "admin") and request.method in _QUOTA_CHECKED:
            self._check_quotas(request, principal, store)
        return principal

    def authenticate(self, request: Request, store: Store) -> Principal:
        """The principal of the request's key, after the failure and rate limits; raises
        the error to answer."""
        client = request.client.host if request.client else "unknown"
        blocked_for = self.failures.blocked_for(client)
        if blocked_for:
            raise RateLimitedError(
                "Too many failed authentications from this client", retry_after=blocked_for
            )
        key = _key_of(request)
        if key is None:
            raise AuthenticationError(
                "An API key is required",
                hint="send `Authorization: Bearer <key>`; create one with `ctxbase keys create`",
            )
        principal = self.keys.principal(store, key)
        home: Store | None = getattr(request.app.state, "home", None)
        if principal is None and home is not None and home is not store:
            # Serving another database than the one it started on: the operator's keys of
            # the home database still work, so the server can always be switched back.
            fallback = self.keys.principal(home, key)
            principal = fallback if fallback is not None and fallback.server_admin else None
        if principal is None:
            self.failures.failed(client)
            raise AuthenticationError("The API key is not valid (unknown, revoked or expired)")
        wait = self.rates.take(principal.key_id, principal.quotas.requests_per_minute)
        if wait:
            raise RateLimitedError("Too many requests for this key", retry_after=wait)
        self._touch(store, principal)
        return principal

    @staticmethod
    def _check_role(rule: Rule, principal: Principal) -> None:
        if principal.role not in _ALLOWED_ROLES[rule]:
            needed = "a writer or admin" if rule == "write" else "an admin"
            raise PermissionDeniedError(f"This needs {needed} key; this key is a {principal.role}")
        if rule == "server" and not principal.server_admin:
            raise PermissionDeniedError(
                "This needs an admin key of the operator tenant",
                hint=f"server administration belongs to tenant {OPERATOR_TENANT!r}",
            )

    @staticmethod
    def _check_scope(needed: str | None, principal: Principal) -> None:
        if needed is None:
            raise PermissionDeniedError("This operation has no scope")  # never: RULES agree
        if not holds(principal.scopes, needed):
            raise PermissionDeniedError(
                f"This needs a key holding scope {needed!r}",
                details={"scope": needed},
                hint="create a key with that scope (or a wildcard such as "
                f"{needed.partition(':')[0]}:*)",
            )

    def require(self, principal: Principal | None, op: Operation) -> None:
        """Refuse ``principal`` (as :meth:`authorize` would) unless its role and scopes
        allow ``op`` too: for a route that does ``op``'s work in some requests."""
        if op.rule == "public":
            return
        if principal is None:
            raise AuthenticationError("An API key is required")
        self._check_role(op.rule, principal)
        self._check_scope(op.scope, principal)

    def _check_quotas(self, request: Request, principal: Principal, store: Store) -> None:
        quotas = principal.quotas
        if quotas.projects is None and quotas.items is None and quotas.storage_bytes is None:
            return
        usage = request.app.state.usage.get(principal.tenant)
        creating_project = request.scope["route"].path_format == "/projects"
        if creating_project and quotas.projects is not None:
            if usage["projects"] >= quotas.projects:
                raise QuotaExceededError(
                    f"Tenant {principal.tenant!r} has its {quotas.projects} projects already",
                    details={"quota": "projects", "limit": quotas.projects},
                )
            return
        for name in ("items", "storage_bytes"):
            limit = getattr(quotas, name)
            if limit is not None and usage[name] >= limit:
                raise QuotaExceededError(
                    f"Tenant {principal.tenant!r} is at its {name.replace('_', ' ')} quota"
                    f" ({limit})",
                    details={"quota": name, "limit": limit, "used": usage[name]},
                )

    def _touch(self, store: Store, principal: Principal) -> None:
        """Record ``last_used_at``, at most once a minute per key."""
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(principal.key_id, -1e9) < _TOUCH_EVERY_SECONDS:
                return
            self._touched[principal.key_id] = now
        if principal.key_id is not None:
            store.keys.touch(principal.key_id, utcnow())


class AuthenticateFirst:
    """Authenticates requests that carry a body before the route reads it.

    FastAPI parses a JSON body before it runs a route's dependencies, so without this a
    request with no key and a malformed body was answered 400, not 401. The principal
    found here is the one the route's own check (:meth:`Gate.authorize`) then uses.
    """

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app, self.prefix = app, prefix.rstrip("/") + "/"

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in KEY_FIRST_METHODS
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        gate: Gate = state.gate
        if gate.settings.auth != "disabled":
            try:
                principal = await run_in_threadpool(gate.authenticate, Request(scope), state.store)
            except CtxbaseError as error:
                await ctxbase_error_response(error)(scope, receive, send)
                return
            scope[_PRINCIPAL] = principal  # this request's own scope, never shared
        await self.app(scope, receive, send)


def scope_of(principal: Principal | None) -> Scope:
    if principal is None:
        return Scope()
    return Scope(
        tenant=principal.tenant,
        projects=principal.projects,
        server_admin=principal.server_admin,
        role=principal.role,
        expires_at=principal.expires_at,
        scopes=principal.scopes,
    )


def _key_of(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None
