"""The MCP tools, each made from one operation of the API.

A :class:`Tool` names the operation it runs (``"memories.add"`` for ``remember``); its
input schema is built from the operation's parameters (the body and query models' own
fields, with their limits and descriptions), its output schema from the operation's
result, its description from the operation's summary, and its access rule is the
operation's. The project is never a parameter: it is the caller's (see
:mod:`~ctxbase.integrations.mcp.access`). A few tools add what an agent needs on top:
``update_memory`` takes ``expected_version``, ``get_context`` an optional ``version``.

A memory's *version* is the number of entries in its history: 1 once remembered, one more
for each update that changed something. ``update_memory`` with ``expected_version``
refuses (``version_conflict``) when the memory has moved on. The check and the update are
serialised within one process; two processes updating the same memory at the same moment
could both pass it (memories have no version column to compare-and-set in SQL).
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.fields import FieldInfo
from pydantic_core import to_json

from ctxbase.api import OPERATIONS, Operation
from ctxbase.errors import VersionConflictError
from ctxbase.integrations.mcp.access import Caller
from ctxbase.records import Memory, MemoryChange

#: Descriptions of the parameters that live outside the body and query models.
ARGUMENT_HELP = {
    "memory_id": "The memory's id.",
    "conversation_id": "The conversation's id.",
    "key": "The entry's key.",
    "namespace": "The entry's namespace, a path such as `agent/plans` (default: none).",
    "expected_version": "Write only if the current version is this one (0: only if absent); "
    "a `version_conflict` error otherwise.",
    "name": "The context unit's name, e.g. a file path.",
    "version": "A version of the unit (default: the latest).",
    "messages": "The messages to append, in order.",
}


class VersionedMemory(Memory):
    version: int = Field(description="Changes recorded so far: pass it as `expected_version`.")


class MemoryHistory(BaseModel):
    items: list[MemoryChange] = Field(description="Every change, oldest first.")
    version: int = Field(description="The memory's current version.")


class Forgotten(BaseModel):
    forgotten: uuid.UUID = Field(description="The id of the memory deleted.")


@dataclass(frozen=True)
class Tool:
    """One MCP tool over one declared operation."""

    name: str
    operation: str
    title: str
    guide: str = ""
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    #: Stores new items: refused over a tenant's item or storage quota.
    adds: bool = False
    #: Extra parameters: name -> (annotation, field).
    extra: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    #: Runs the tool when it is more than a call of the operation: (caller, arguments).
    run: Callable[[Caller, dict[str, Any]], Any] | None = None
    #: The result's type when it is not the operation's.
    output: Any = None

    @property
    def op(self) -> Operation:
        return OPERATIONS[self.operation]

    # --- derived from the declaration ---

    @cached_property
    def input_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for name, (annotation, info) in _parameters(self.op).items():
            fields[name] = (annotation, info)
        fields.update(self.extra)
        model_name = "".join(part.title() for part in self.name.split("_")) + "Input"
        return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)

    @cached_property
    def output_type(self) -> Any:
        if self.output is not None:
            return self.output
        result = self.op.result
        if result is None:
            return None
        if getattr(result, "__origin__", None) is list:
            return create_model(
                f"{self.name.title().replace('_', '')}Output",
                items=(result, ...),
            )
        return result

    def description(self, notes: Mapping[str, str]) -> str:
        parts = [self.op.summary + ".", self.guide, notes.get("*", ""), notes.get(self.name, "")]
        return " ".join(part.strip() for part in parts if part.strip())

    def describe(self, notes: Mapping[str, str]) -> types.Tool:
        output = self.output_type
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description(notes),
            input_schema=self.input_model.model_json_schema(),
            output_schema=None
            if output is None
            else TypeAdapter(output).json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=None if self.read_only else self.destructive,
                idempotent_hint=None if self.read_only else self.idempotent,
                open_world_hint=False,
            ),
        )

    # --- calling ---

    def call(self, caller: Caller, arguments: dict[str, Any]) -> Any:
        """Run the tool as ``caller`` with validated ``arguments``; the structured result."""
        if self.adds:
            caller.check_quota()
        value = self.run(caller, arguments) if self.run else invoke(caller, self.op, arguments)
        output = self.output_type
        if output is None:
            return None
        if isinstance(value, list):  # a list result travels as {"items": [...]}
            value = output(items=value)
        return TypeAdapter(output).dump_python(value, mode="json")

    def text(self, structured: Any) -> str:
        """What a client that reads no structured content shows the model."""
        if self.name == "recall" and isinstance(structured, dict):
            return str(structured.get("text") or "Nothing was recalled for this query.")
        return to_json(structured).decode()


def invoke(caller: Caller, op: Operation, arguments: dict[str, Any]) -> Any:
    """Call ``op``'s Store method in the caller's store and project."""
    target: Any = caller.store
    for part in op.name.split("."):
        target = getattr(target, part)
    values = dict(arguments)
    names = {arg.name for arg, _where in op.parameters()}
    if "actor" in names:
        values["actor"] = caller.actor
    if op.in_project:
        values["project"] = caller.project
    return target(**values)


def _parameters(op: Operation) -> dict[str, tuple[Any, FieldInfo]]:
    """The operation's parameters a model may set: not the project, not the actor."""
    models = [m for m in (op.body, op.query) if m is not None]
    found: dict[str, tuple[Any, FieldInfo]] = {}
    for arg, where in op.parameters():
        if where in ("project", "server") or arg.name == "actor":
            continue
        owner = next((m for m in models if arg.name in m.model_fields), None)
        if owner is not None:
            info = FieldInfo.merge_field_infos(owner.model_fields[arg.name])
            if info.description is None:
                info.description = ARGUMENT_HELP.get(arg.name)
            found[arg.name] = (info.annotation, info)
            continue
        annotation = uuid.UUID if "UUID" in repr(arg.annotation) else arg.annotation
        default = ... if arg.default is inspect.Parameter.empty else arg.default
        found[arg.name] = (annotation, Field(default, description=ARGUMENT_HELP.get(arg.name)))
    return found


# --- tools that do more than one call ------------------------------------------------

_MEMORY_LOCKS = [threading.Lock() for _ in range(64)]


def memory_version(caller: Caller, memory_id: Any) -> int:
    return len(caller.store.memories.history(memory_id, project=caller.project))


def _remember(caller: Caller, arguments: dict[str, Any]) -> VersionedMemory:
    memory = invoke(caller, OPERATIONS["memories.add"], arguments)
    return VersionedMemory(**memory.model_dump(), version=1)


def _update_memory(caller: Caller, arguments: dict[str, Any]) -> VersionedMemory:
    expected = arguments.pop("expected_version", None)
    memory_id = arguments["memory_id"]
    with _MEMORY_LOCKS[hash(str(memory_id)) % len(_MEMORY_LOCKS)]:
        if expected is not None:
            current = memory_version(caller, memory_id)
            if current != expected:
                raise VersionConflictError(
                    f"Memory {memory_id} is at version {current}, not {expected}",
                    details={"version": current},
                    hint="read it again (memory_history) and retry with its version",
                )
        memory = invoke(caller, OPERATIONS["memories.update"], arguments)
        version = memory_version(caller, memory_id)
    return VersionedMemory(**memory.model_dump(), version=version)


def _memory_history(caller: Caller, arguments: dict[str, Any]) -> MemoryHistory:
    items = invoke(caller, OPERATIONS["memories.history"], arguments)
    return MemoryHistory(items=items, version=len(items))


def _forget(caller: Caller, arguments: dict[str, Any]) -> Forgotten:
    invoke(caller, OPERATIONS["memories.delete"], arguments)
    return Forgotten(forgotten=arguments["memory_id"])


def _get_context(caller: Caller, arguments: dict[str, Any]) -> Any:
    if arguments.get("version") is not None:
        return invoke(caller, OPERATIONS["contexts.get_version"], arguments)
    arguments.pop("version", None)
    return invoke(caller, OPERATIONS["contexts.get_latest"], arguments)


_EXPECTED_VERSION = (
    int | None,
    Field(None, ge=0, description=ARGUMENT_HELP["expected_version"]),
)

# fmt: off
TOOLS: tuple[Tool, ...] = (
    Tool("recall", "recall", "Recall context", read_only=True,
         guide="Call it before answering: `text` is ready to put in the prompt, within "
               "`max_tokens`, each line naming its source (`memory:<id>`, `context:<id>`, "
               "`message:<id>`)."),
    Tool("remember", "memories.add", "Remember", adds=True,
         guide="Keep one fact, preference or episode worth knowing in later conversations; "
               "returns its id and version.",
         run=_remember, output=VersionedMemory),
    Tool("update_memory", "memories.update", "Update a memory", destructive=True,
         guide="Give only the fields to change; `expected_version` makes it "
               "compare-and-set.",
         extra={"expected_version": _EXPECTED_VERSION}, run=_update_memory,
         output=VersionedMemory),
    Tool("forget", "memories.delete", "Forget a memory", destructive=True, idempotent=True,
         run=_forget, output=Forgotten),
    Tool("memory_history", "memories.history", "Memory history", read_only=True,
         run=_memory_history, output=MemoryHistory),
    Tool("start_conversation", "conversations.create", "Start a conversation", adds=True,
         guide="Returns the id `append_messages` and `recall` take."),
    Tool("append_messages", "messages.append_many", "Append messages", adds=True),
    Tool("get_messages", "messages.list", "Get messages", read_only=True),
    Tool("get_state", "state.get", "Get state", read_only=True),
    Tool("set_state", "state.put", "Set state", destructive=True, idempotent=True, adds=True),
    Tool("put_context", "contexts.add", "Put context", idempotent=True, adds=True,
         guide="The same name with new content stores a new version; the same content "
               "returns the stored one."),
    Tool("get_context", "contexts.get_latest", "Get context", read_only=True,
         extra={"version": (int | None, Field(None, ge=1, description=ARGUMENT_HELP["version"]))},
         run=_get_context),
    Tool("append_event", "events.append", "Append an event", adds=True),
    Tool("read_events", "events.list", "Read events", read_only=True),
    Tool("stats", "stats", "Project stats", read_only=True),
)
# fmt: on
TOOLS_BY_NAME: dict[str, Tool] = {tool.name: tool for tool in TOOLS}
