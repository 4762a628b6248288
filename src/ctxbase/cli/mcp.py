"""``ctxbase mcp``: the MCP server over stdio, as MCP clients start it."""

from __future__ import annotations

from typing import Annotated

import typer

from ctxbase.cli.common import out, settings_of
from ctxbase.errors import ConfigurationError

commands = typer.Typer()


@commands.command()
def mcp(
    ctx: typer.Context,
    project: Annotated[
        str | None,
        typer.Option(help="Project the tools act in (CTXBASE_MCP_PROJECT; default: default)."),
    ] = None,
    list_tools: Annotated[
        bool,
        typer.Option("--list-tools", help="Print the tools this configuration offers, then exit."),
    ] = False,
) -> None:
    """Serve MCP over stdio (Claude Desktop, Claude Code, Cursor, …): recall, remember,
    update and forget memories, messages, state, context units and events."""
    try:
        from ctxbase.integrations.mcp.stdio import StdioCaller, serve_stdio
    except ImportError as error:
        raise ConfigurationError(
            f"The MCP server needs the `mcp` package ({error})",
            hint="pip install 'ctxbase[mcp]'",
        ) from None
    from ctxbase.store import Store

    with Store(settings=settings_of(ctx)) as store:
        resolve = StdioCaller(store, store.settings, project=project)
        caller = resolve.check()
        if list_tools:
            from ctxbase.integrations.mcp.tools import TOOLS

            who = caller.principal.actor if caller.principal else "the local library"
            out.print(f"project {caller.project}, as {who}:", highlight=False)
            for tool in TOOLS:
                if caller.may(tool.op):
                    out.print(f"  {tool.name}: {tool.op.summary}", highlight=False)
            return
        serve_stdio(store, resolve)
