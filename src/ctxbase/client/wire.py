"""One operation's HTTP request from a Python call, and its Python result from the response.

Built from the operation's declaration: each parameter travels where the declaration says
(path, query, body, header), and the answer is validated as the declared result model.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from ctxbase.api.spec import DEFAULT_PROJECT, Operation
from ctxbase.api.strict import argument_error
from ctxbase.errors import error_class_for
from ctxbase.store.base import invalid_input, parse

_PATH_PARAM = re.compile(r"{(\w+)(?::path)?}")


@dataclass
class Request:
    """What to send for one call."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Codec:
    """Turns calls of one operation into requests and responses into results."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.signature = client_signature(op)
        self._locations = {arg.name: (arg, where) for arg, where in op.parameters()}

    def request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            raise argument_error(self.op.name, self.signature, args, kwargs) from None
        request = Request(self.op.method, "")
        path_values: dict[str, Any] = {}
        body: dict[str, Any] = {}
        whole_body: Any = None
        for name, value in bound.arguments.items():
            arg, where = self._locations[name]
            if where in ("path", "project"):
                path_values[arg.http_name] = value
            elif value is None:
                continue  # an absent optional: the server's default applies
            elif where == "query":
                request.params[name] = _query_value(value)
            elif where == "header" and arg.header:
                request.headers[arg.header] = str(value)
            elif self.op.body is not None and name in self.op.body.model_fields:
                body[name] = value
            else:
                whole_body = value
        if self.op.in_project:
            path_values.setdefault("project", DEFAULT_PROJECT)
        request.path = _fill(self.op.path, path_values)
        if whole_body is not None:
            request.json = encode(self._whole_body(whole_body))
        elif self.op.body is not None:  # checked here as the server would, before sending
            request.json = encode(parse(self.op.body, body))
        return request

    def _whole_body(self, value: Any) -> Any:
        """A body given as one argument (a list of messages), checked like the server does."""
        arg = next(a for a, where in self.op.parameters() if where == "body")
        try:
            return TypeAdapter(arg.annotation).validate_python(value)
        except ValidationError as e:
            raise invalid_input(e.errors()) from None

    @cached_property
    def _adapter(self) -> TypeAdapter[Any] | None:
        model = self.op.response_model
        return None if model is None or self.op.status == 204 else TypeAdapter(model)

    def result(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise_for(response)
        if self._adapter is None or response.status_code == 204:
            return None
        value = self._adapter.validate_python(response.json())
        return self.op.wire.unwrap(value) if self.op.wire is not None else value


def client_signature(op: Operation) -> inspect.Signature:
    """The operation's signature without what the server fills in itself; a 204 answer
    has no body, so such a call returns None."""
    signature = op.signature()
    server_side = {arg.name for arg, where in op.parameters() if where == "server"}
    return signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name not in server_side],
        return_annotation=None if op.status == 204 else signature.return_annotation,
    )


def encode(value: Any) -> Any:
    """JSON for a request body: models as the server reads them, secrets in clear."""
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_unset=True, by_alias=True)
    if isinstance(value, dict):
        value = {
            k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in value.items()
        }
    return to_jsonable_python(value)


def _query_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, uuid.UUID) else value


def _fill(path: str, values: dict[str, Any]) -> str:
    return _PATH_PARAM.sub(lambda m: quote(str(values[m.group(1)]), safe=""), path)


def raise_for(response: httpx.Response) -> None:
    """Raise the ctxbase error class of an error response."""
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "error", response.text or response.reason_phrase, None
    hint = details.pop("hint", None) if isinstance(details, dict) else None
    raise error_class_for(code, response.status_code)(message, details=details or None, hint=hint)
