"""MCP over streamable HTTP at ``/mcp`` of ``ctxbase serve``.

Each request is authenticated by the server's own gate (the same keys, failure and rate
limits as the REST API) before the SDK sees it; its principal and project ride in the
ASGI scope to the tool handlers. The transport is stateless with JSON responses: no
session lives in a process, so any number of server processes may answer one client.
On a loopback address the SDK's DNS-rebinding protection is on (Host and Origin must be
local), so a web page cannot reach a development server through a browser.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ctxbase.config import Settings
from ctxbase.errors import CtxbaseError, DatabaseUnavailableError
from ctxbase.integrations.mcp.access import PROJECT_HEADER, Caller, project_for
from ctxbase.integrations.mcp.server import build_server
from ctxbase.server.access import DEVELOPMENT_PRINCIPAL, is_loopback
from ctxbase.server.errors import ctxbase_error_response

log = logging.getLogger("ctxbase.mcp")

PATH = "/mcp"
_CALLER = "ctxbase.mcp.caller"


def _caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    caller = request.scope.get(_CALLER) if request is not None else None
    if not isinstance(caller, Caller):  # only requests through McpEndpoint reach here
        raise DatabaseUnavailableError("The MCP request was not authenticated")
    return caller


class McpEndpoint:
    """The ASGI app at ``/mcp``: authenticate, then hand over to the SDK's transport."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = build_server(_caller_of, notes=settings.mcp_tool_notes)
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve while the application runs (its lifespan enters this, once per start:
        the SDK's manager runs once, so each start has its own)."""
        manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            security_settings=_security(self.settings),
            max_request_body_size=self.settings.max_request_bytes,
        )
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self.manager
        if manager is None:
            error = DatabaseUnavailableError("The MCP endpoint is not running (yet)")
            await ctxbase_error_response(error)(scope, receive, send)
            return
        try:
            scope[_CALLER] = await run_in_threadpool(self._authenticate, Request(scope))
        except CtxbaseError as error:
            await ctxbase_error_response(error)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)

    def _authenticate(self, request: Request) -> Caller:
        state = request.app.state
        store = state.store
        if self.settings.auth == "disabled":
            principal = DEVELOPMENT_PRINCIPAL
        else:
            principal = state.gate.authenticate(request, store)
        asked = request.headers.get(PROJECT_HEADER) or None
        project = project_for(principal, asked, self.settings.mcp_project)
        return Caller.of(store, principal, project, usage=state.usage.get)


def _security(settings: Settings) -> TransportSecuritySettings:
    if not is_loopback(settings.host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def mcp_route(settings: Settings) -> tuple[Route, McpEndpoint]:
    """The ``/mcp`` route of the server app, and its endpoint (whose ``running()`` the
    app's lifespan enters)."""
    endpoint = McpEndpoint(settings)
    return Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]), endpoint
