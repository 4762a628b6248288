"""The MCP server of ctxbase: tools and ``ctxbase://`` resources for MCP clients (Claude
Desktop, Claude Code, Cursor, …), over stdio (``ctxbase mcp``) and streamable HTTP
(``/mcp`` of ``ctxbase serve``). Needs the ``mcp`` extra: ``pip install 'ctxbase[mcp]'``.

- :mod:`.tools`: the tools, each made from one declared operation of the API;
- :mod:`.access`: who a request acts as, in which project, and what it may call;
- :mod:`.server`: the SDK server over a caller resolver;
- :mod:`.http` and :mod:`.stdio`: the two transports.
"""

from ctxbase.integrations.mcp.access import Caller
from ctxbase.integrations.mcp.server import build_server
from ctxbase.integrations.mcp.tools import TOOLS

__all__ = ["TOOLS", "Caller", "build_server"]
