"""Who is looking at a console page, and what they may do: the REST API's rules, reused.

Every console request resolves its session's key to a principal with the server's own
:class:`~ctxbase.server.access.Gate` (the same failure and rate limits, revocation and
expiry as an API call), and every action the console takes is a call of the REST API
itself, in process, with that key (:attr:`Visitor.api`): the API's access check, scopes,
quotas and audit log apply to the console unchanged, and a console page can do nothing
the key could not do over HTTP.

Which controls a page shows is decided by the same gate: :meth:`Visitor.can` asks
:meth:`Gate.authorize` whether the principal may call an operation (by its declaration in
:data:`ctxbase.api.OPERATIONS`) in a project. Hiding a control is a courtesy; the API
refuses the action anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from ctxbase.api import OPERATIONS
from ctxbase.client import AsyncClient
from ctxbase.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
)
from ctxbase.server.access import _PRINCIPAL, DEVELOPMENT_PRINCIPAL, Gate, scope_of
from ctxbase.server.console.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    Sessions,
    same_token,
)
from ctxbase.store import Store
from ctxbase.store.tenancy import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The console's calls of the API: a long job's start may take a while to check.
API_TIMEOUT = 120.0
INTERNAL_URL = "http://console.internal"


class SignInRequired(Exception):
    """The request has no working session: sign in (again)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token, or from another site."""


@dataclass(frozen=True)
class _RouteOf:
    """What :meth:`Gate.authorize` reads of a route: its path template."""

    path_format: str


def console_parent(request: Request) -> FastAPI:
    """The ctxbase app the console is mounted in."""
    parent: FastAPI = request.app.state.parent
    return parent


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def authenticate(parent: FastAPI, request: Request, key: str | None) -> Principal:
    """The principal of ``key``, checked by the server's gate as an API request's key is
    (raises AuthenticationError or RateLimitedError)."""
    gate: Gate = parent.state.gate
    if gate.settings.auth == "disabled":
        return DEVELOPMENT_PRINCIPAL
    if not key:
        raise AuthenticationError("An API key is required")
    scope = _scope(parent, request, "GET", "/console")
    scope["headers"] = [(b"authorization", f"Bearer {key}".encode())]
    return gate.authenticate(Request(scope), parent.state.store)


def permits(parent: FastAPI, principal: Principal, name: str, project: str | None) -> bool:
    """Whether ``principal`` may call operation ``name`` (in ``project``), as the API's
    gate decides for a request of that route. Over a quota still counts as allowed: the
    control shows, and the API says why it refuses."""
    method, path = OPERATIONS[name].route_key
    scope = _scope(parent, None, method, path)
    scope["route"] = _RouteOf(path)
    scope["path_params"] = {"project": project} if project is not None else {}
    scope[_PRINCIPAL] = principal
    try:
        parent.state.gate.authorize(Request(scope), parent.state.store)
    except QuotaExceededError:
        return True
    except (AuthenticationError, PermissionDeniedError, NotFoundError):
        return False
    return True


def _scope(parent: FastAPI, request: Request | None, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": request.scope.get("client") if request is not None else None,
        "app": parent,
    }


@dataclass
class Visitor:
    """A signed-in browser's request: its session, principal and API client."""

    request: Request
    session: Session
    principal: Principal
    form: dict[str, str] = field(default_factory=dict)
    _api: Any = None
    _allowed: dict[tuple[str, str | None], bool] = field(default_factory=dict)

    @property
    def parent(self) -> FastAPI:
        return console_parent(self.request)

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def base(self) -> str:
        """The console's URL path (``/console``, under any proxy prefix)."""
        return str(self.request.scope.get("root_path", ""))

    @property
    def api(self) -> Any:
        """The REST API, called in process with this session's key (closed with the
        request). An :class:`~ctxbase.AsyncClient`, typed ``Any``: its methods are made
        from the declarations at import time."""
        if self._api is None:
            self._api = self.open_api()
        return self._api

    def open_api(self) -> Any:
        """A client of the REST API with this session's key, for the caller to close."""
        client = self.request.scope.get("client") or ("127.0.0.1", 0)
        transport = httpx.ASGITransport(app=self.parent, client=tuple(client))
        return AsyncClient(
            INTERNAL_URL, api_key=self.session.key, transport=transport, timeout=API_TIMEOUT
        )

    @property
    def actor(self) -> str:
        """How memory history names a change made here."""
        return f"console ({self.principal.actor})"

    def can(self, name: str, project: str | None = None) -> bool:
        """Whether this visitor may call operation ``name`` (in ``project``)."""
        found = self._allowed.get((name, project))
        if found is None:
            found = self._allowed[(name, project)] = permits(
                self.parent, self.principal, name, project
            )
        return found

    def store(self) -> Store:
        """The store as this visitor's key sees it (for the few reads the API has no
        operation for: counts, and the live event tail)."""
        store: Store = self.parent.state.store
        scope = scope_of(self.principal)
        return store if scope == store.scope else store.scoped(scope)

    def flash(self, kind: str, message: str) -> None:
        self.session.flash(kind, message)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.aclose()


async def visitor(request: Request) -> AsyncIterator[Visitor]:
    """The signed-in visitor of a console request (a dependency); unsafe requests must
    carry the CSRF token and come from the console's own pages."""
    session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired()
    parent = console_parent(request)
    try:
        principal = await run_in_threadpool(authenticate, parent, request, session.key)
    except AuthenticationError as error:
        sessions_of(request).end(request.cookies.get(SESSION_COOKIE))
        raise SignInRequired(f"Signed out: {error.message}") from None
    seen = Visitor(request, session, principal)
    if request.method not in SAFE_METHODS:
        seen.form = await read_form(request)
        check_csrf(request, seen.form, session.csrf)
    try:
        yield seen
    finally:
        await seen.close()


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (the console sends no other kind); a field given
    twice keeps every value, joined by newlines (multiple selects)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    fields: dict[str, str] = {}
    body = (await request.body()).decode("utf-8", errors="replace")
    for name, value in parse_qsl(body, keep_blank_values=True, max_num_fields=1000):
        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
    return fields


def check_csrf(request: Request, form: dict[str, str], expected: str) -> None:
    """Refuse an unsafe request that lacks the token, or that another site sent."""
    if not same_origin(request):
        raise CsrfRefused("This request came from another site")
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not same_token(given, expected):
        raise CsrfRefused("The form's security token is missing or out of date; reload the page")


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from this site (browsers send
    ``Origin`` and ``Sec-Fetch-Site`` on every unsafe request; tools may send neither)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(f"Not an id: {value[:60]!r}") from None
