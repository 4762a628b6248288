"""The MCP server: tools and ``ctxbase://`` resources over one caller resolver.

:func:`build_server` makes an SDK :class:`mcp.server.Server` whose handlers ask
``resolve(ctx)`` who the request acts as (a :class:`Caller`): over HTTP the request's
key, over stdio the configured one. Every store call runs in a worker thread. A tool's
failure is a tool result marked as an error holding ctxbase's error envelope
(``{"error": {"code", "message", "details"}}``), so the model can read and correct it.

Resources: ``ctxbase://conversations/{id}`` (the conversation and its messages),
``ctxbase://memories/{id}``, ``ctxbase://contexts/{id}`` and
``ctxbase://contexts/by-name/{name}``, each as JSON; the list shows the latest 50 of each.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from pydantic_core import to_json

import ctxbase
from ctxbase.api import OPERATIONS
from ctxbase.errors import CtxbaseError, InvalidInputError, NotFoundError
from ctxbase.integrations.mcp.access import Caller
from ctxbase.integrations.mcp.tools import TOOLS, TOOLS_BY_NAME, invoke
from ctxbase.store.base import invalid_input

Resolver = Callable[[ServerRequestContext[Any, Any]], Caller]

SCHEME = "ctxbase://"
RESOURCE_NOT_FOUND = -32002
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
#: Conversations, memories and context units each listed as resources.
LISTED = 50

INSTRUCTIONS = (
    "ctxbase keeps this agent's long-term memory, conversations, context units, state and "
    "events. Call `recall` with the task at hand before answering and put its `text` in "
    "your context; `remember` facts worth keeping; `update_memory` or `forget` those that "
    "changed. Every item names its source id."
)

TEMPLATES = (
    ("conversations/{conversation_id}", "conversation", "A conversation and its messages"),
    ("memories/{memory_id}", "memory", "A memory"),
    ("contexts/{context_id}", "context unit", "A context unit (any version) by id"),
    ("contexts/by-name/{name}", "context unit", "The latest version of a named context unit"),
)


def build_server(resolve: Resolver, *, notes: Mapping[str, str] | None = None) -> Server[Any]:
    """An MCP server whose requests act as ``resolve(ctx)``; ``notes`` are operators' texts
    appended to tool descriptions, by tool name (``*``: every tool)."""
    described = {tool.name: tool.describe(notes or {}) for tool in TOOLS}

    async def caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
        try:
            return await anyio.to_thread.run_sync(resolve, ctx)
        except CtxbaseError as error:
            raise protocol_error(error) from None

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = await caller_of(ctx)
        return types.ListToolsResult(
            tools=[described[tool.name] for tool in TOOLS if caller.may(tool.op)]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = TOOLS_BY_NAME.get(params.name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        caller = await caller_of(ctx)
        try:
            caller.check(tool.op)
            try:
                arguments = tool.input_model.model_validate(params.arguments or {})
            except ValidationError as error:
                raise invalid_input(error.errors()) from None
            given = arguments.model_dump(exclude_unset=True)
            structured = await anyio.to_thread.run_sync(tool.call, caller, given)
        except CtxbaseError as error:
            return types.CallToolResult(
                content=[types.TextContent(text=to_json(error.to_dict()).decode())],
                is_error=True,
            )
        return types.CallToolResult(
            content=[types.TextContent(text=tool.text(structured))],
            structured_content=structured,
        )

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=SCHEME + path,
                    name=what,
                    description=description,
                    mime_type="application/json",
                )
                for path, what, description in TEMPLATES
            ]
        )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        caller = await caller_of(ctx)
        try:
            found = await anyio.to_thread.run_sync(_listed, caller)
        except CtxbaseError as error:
            raise protocol_error(error) from None
        return types.ListResourcesResult(resources=found)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        caller = await caller_of(ctx)
        try:
            body = await anyio.to_thread.run_sync(_read, caller, str(params.uri))
        except CtxbaseError as error:
            raise protocol_error(error) from None
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=str(params.uri), mime_type="application/json", text=body
                )
            ]
        )

    return Server(
        "ctxbase",
        version=ctxbase.__version__,
        title="ctxbase",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def protocol_error(error: CtxbaseError) -> MCPError:
    """A ctxbase error as an MCP protocol error (for requests other than tool calls)."""
    code = SERVER_ERROR  # the envelope in `data` says which
    if isinstance(error, NotFoundError):
        code = RESOURCE_NOT_FOUND
    elif isinstance(error, InvalidInputError):
        code = INVALID_PARAMS
    return MCPError(code, error.message, data=error.to_dict()["error"])


# --- resources -----------------------------------------------------------------------------


def _listed(caller: Caller) -> list[types.Resource]:
    """The latest conversations, memories and context units the caller may read."""
    store, project = caller.store, caller.project
    resources: list[types.Resource] = []
    if caller.may(OPERATIONS["conversations.list"]):
        for chat in store.conversations.list(project=project, limit=LISTED).items:
            resources.append(
                _resource(f"conversations/{chat.id}", chat.title or f"conversation {chat.id}")
            )
    if caller.may(OPERATIONS["memories.list"]):
        for memory in store.memories.list(project=project, limit=LISTED).items:
            resources.append(_resource(f"memories/{memory.id}", _headline(memory.content)))
    if caller.may(OPERATIONS["contexts.list"]):
        for unit in store.contexts.list(project=project, limit=LISTED).items:
            resources.append(_resource(f"contexts/{unit.id}", f"{unit.name} (v{unit.version})"))
    return resources


def _resource(path: str, name: str) -> types.Resource:
    return types.Resource(uri=SCHEME + path, name=name, mime_type="application/json")


def _headline(text: str, length: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= length else line[: length - 1] + "…"


def _read(caller: Caller, uri: str) -> str:
    """The JSON of the record at ``uri``, read as the caller."""
    if not uri.startswith(SCHEME):
        raise InvalidInputError(f"Not a ctxbase resource: {uri}", hint="use ctxbase://…")
    kind, _, rest = uri.removeprefix(SCHEME).partition("/")
    if kind == "conversations" and _is_id(rest):
        return _conversation(caller, rest)
    if kind == "memories" and _is_id(rest):
        return _record(caller, "memories.get", {"memory_id": rest})
    if kind == "contexts" and rest.startswith("by-name/") and rest != "by-name/":
        return _record(caller, "contexts.get_latest", {"name": rest.removeprefix("by-name/")})
    if kind == "contexts" and _is_id(rest):
        return _record(caller, "contexts.get", {"context_id": rest})
    raise NotFoundError(f"No resource {uri}")


def _is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _record(caller: Caller, name: str, arguments: dict[str, Any]) -> str:
    op = OPERATIONS[name]
    caller.check(op)
    return invoke(caller, op, arguments).model_dump_json()


def _conversation(caller: Caller, conversation_id: str) -> str:
    caller.check(OPERATIONS["conversations.get"])
    caller.check(OPERATIONS["messages.list"])
    store, project = caller.store, caller.project
    chat = store.conversations.get(conversation_id, project=project)
    messages: list[Any] = []
    cursor = None
    while True:
        page = store.messages.list(chat.id, limit=1000, cursor=cursor, project=project)
        messages.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return to_json({"conversation": chat, "messages": messages}).decode()
