"""MCP over stdio: ``ctxbase mcp``, the way desktop clients start a local server.

The store is opened from the settings (``CTXBASE_DATABASE_URL`` and the rest). With the
``mcp_api_key`` setting every call acts as that key, checked again on each call (a
revoked or expired key stops working at once); without it, with the local library's own
full access to the configured project (``mcp_project``).
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from ctxbase.config import Settings
from ctxbase.errors import AuthenticationError
from ctxbase.integrations.mcp.access import Caller, project_for
from ctxbase.integrations.mcp.server import build_server
from ctxbase.store import Store


class StdioCaller:
    """Who every call of a stdio server acts as (see the module's docstring)."""

    def __init__(self, store: Store, settings: Settings, *, project: str | None = None) -> None:
        self.store = store
        self.key = settings.mcp_api_key.get_secret_value() if settings.mcp_api_key else None
        self.project = project or settings.mcp_project

    def __call__(self, ctx: ServerRequestContext[Any, Any] | None = None) -> Caller:
        principal = None
        if self.key is not None:
            principal = self.store.keys.authenticate(self.key)
            if principal is None:
                raise AuthenticationError(
                    "The MCP API key is not valid (unknown, revoked or expired)",
                    hint="check CTXBASE_MCP_API_KEY",
                )
        project = project_for(principal, None, self.project)
        return Caller.of(self.store, principal, project)

    def check(self) -> Caller:
        """The caller, after checking that its key works and its project exists."""
        caller = self()
        caller.store.projects.get(caller.project)
        return caller


def serve_stdio(store: Store, resolve: StdioCaller) -> None:
    """Serve MCP on this process's stdin and stdout until the client closes them."""
    server = build_server(resolve, notes=store.settings.mcp_tool_notes)

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(run)
