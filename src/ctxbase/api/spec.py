"""What one operation of the API is: the declaration everything else is built from.

An :class:`Operation` names a Store method (``"memories.add"``), its REST route, its access
rule, its input and result models, a one-line summary and an example. From the
declarations come the access table of the server, the routes' OpenAPI metadata, the HTTP
clients (sync and async) and the asyncio facade; the Store's own methods, which are the
implementations, are checked against them by the test suite.

The Python signature of an operation is derived here too (:meth:`Operation.signature`):
positional parameters first (``args``), then keyword-only ones from the body model, the
query model, ``project`` when the path has one, and ``extra`` parameters (headers). Every
interface exposes exactly that signature.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

Rule = Literal["public", "read", "write", "admin", "server"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
#: Where a parameter travels over HTTP; ``server`` ones are filled in by the server from
#: the caller (the audit actor) and are not sent by clients.
Location = Literal["path", "body", "query", "header", "project", "server"]

API_PREFIX = "/api/v1"
DEFAULT_PROJECT = "default"
_PATH_PARAM = re.compile(r"{(\w+)(?::path)?}")


@dataclass(frozen=True)
class Arg:
    """A parameter outside the body and query models: a path id, or a header.

    ``location`` says where it travels over HTTP; ``default`` is
    :data:`inspect.Parameter.empty` for a required one.
    """

    name: str
    annotation: Any
    location: Location = "path"
    default: Any = inspect.Parameter.empty
    header: str | None = None  # the HTTP header's name, for location="header"
    wire_name: str | None = None  # its name in the path when it differs (``{project}``)

    @property
    def http_name(self) -> str:
        return self.wire_name or self.name


@dataclass(frozen=True)
class Wire:
    """A REST result that wraps the library's: the route answers ``model`` with the
    Store method's result in its ``field`` (a list in a page's ``items``)."""

    model: Any
    field: str = "items"

    def wrap(self, value: Any) -> Any:
        return self.model(**{self.field: value})

    def unwrap(self, body: Any) -> Any:
        return getattr(body, self.field)


@dataclass(frozen=True)
class Operation:
    """One operation of the API, declared once."""

    name: str
    method: HttpMethod
    path: str
    rule: Rule
    summary: str
    result: Any = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: Positional parameters, in order: path ids and body fields taken positionally.
    args: tuple[Arg | str, ...] = ()
    #: Keyword-only parameters outside the models (headers).
    extra: tuple[Arg, ...] = ()
    status: int = 200
    wire: Wire | None = None
    example: dict[str, Any] | None = None
    #: ``rest``: a route only (server jobs); ``library``: no route; ``both``.
    on: Literal["both", "rest", "library"] = "both"
    #: Routes whose wire format a generic client cannot express (SSE, headers in and out)
    #: have a hand-written client method; the parity test checks its signature all the same.
    custom_client: bool = False
    tags: tuple[str, ...] = field(default=())

    # --- derived ---

    @property
    def domain(self) -> str:
        """The Store attribute holding the method: ``memories`` for ``memories.add``."""
        return self.name.split(".")[0]

    @property
    def method_name(self) -> str:
        return self.name.split(".")[-1]

    @property
    def scope(self) -> str:
        """The key scope this operation needs, e.g. ``memories:write``: ``read`` for the
        operations that change nothing (the ``read`` rule, and every ``GET``, such as
        ``keys.list``: its role still needs an admin), ``write`` for the others."""
        kind = "read" if self.rule in ("read", "public") or self.method == "GET" else "write"
        return f"{self.domain}:{kind}"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def in_project(self) -> bool:
        """Whether the operation acts inside a project named by a ``project=`` keyword."""
        named = {a.http_name for a in self.positional()}
        return "project" in self.path_params and "project" not in named

    @property
    def route_key(self) -> tuple[str, str]:
        """``(method, path)`` as the access table and the router name a route."""
        return (self.method, _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path))

    @property
    def request_example(self) -> Any:
        """An example body: the declared one, else the first the body model gives."""
        if self.example is not None or self.body is None:
            return self.example
        extra = self.body.model_config.get("json_schema_extra")
        examples = extra.get("examples") if isinstance(extra, dict) else None
        return examples[0] if isinstance(examples, list) and examples else None

    @property
    def response_model(self) -> Any:
        return self.wire.model if self.wire is not None else self.result

    def positional(self) -> tuple[Arg, ...]:
        return tuple(self._arg(a) for a in self.args)

    def _arg(self, arg: Arg | str) -> Arg:
        if isinstance(arg, Arg):
            return arg
        for model, location in ((self.body, "body"), (self.query, "query")):
            if model is not None and arg in model.model_fields:
                info = model.model_fields[arg]
                return Arg(arg, info.annotation, location, _default_of(info))  # type: ignore[arg-type]
        raise ValueError(f"{self.name}: positional {arg!r} is in no model")

    def parameters(self) -> list[tuple[Arg, Location]]:
        """Every parameter of the operation's signature with where it travels."""
        positional = self.positional()
        taken = {a.name for a in positional}
        params: list[tuple[Arg, Location]] = [(a, a.location) for a in positional]
        sources: tuple[tuple[type[BaseModel] | None, Location], ...] = (
            (self.body, "body"),
            (self.query, "query"),
        )
        for model, location in sources:
            if model is None:
                continue
            for name, info in model.model_fields.items():
                if name not in taken:
                    arg = Arg(name, info.annotation, location, _default_of(info))
                    params.append((arg, location))
                    taken.add(name)
        for arg in self.extra:
            params.append((arg, arg.location))
        if self.in_project:
            params.append((Arg("project", str, "project", DEFAULT_PROJECT), "project"))
        return params

    def signature(self) -> inspect.Signature:
        """The Python signature every interface gives this operation (``self`` excluded)."""
        positional = {a.name for a in self.positional()}
        params = []
        for arg, _location in self.parameters():
            kind = (
                inspect.Parameter.POSITIONAL_OR_KEYWORD
                if arg.name in positional
                else inspect.Parameter.KEYWORD_ONLY
            )
            params.append(
                inspect.Parameter(arg.name, kind, default=arg.default, annotation=arg.annotation)
            )
        # Python wants required keyword-only and positional defaults in a valid order.
        return inspect.Signature(params, return_annotation=self.result)


def _default_of(info: FieldInfo) -> Any:
    """The library default of a model field: its default, None for a default factory."""
    if info.default is not PydanticUndefined:
        return info.default
    if info.default_factory is not None:
        return None
    return inspect.Parameter.empty
