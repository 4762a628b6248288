"""The clients' methods, made from the operation declarations.

Every declared operation with a route becomes a method of the matching sub-client
(``client.memories.add``) with the operation's signature, summary and result model, for
the sync and the async client alike. Operations whose wire format no declaration can
express (SSE streams, ETag headers) come from :mod:`ctxbase.client.custom`, written by
hand and checked against the declarations by the parity test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ctxbase.api import OPERATIONS, Operation
from ctxbase.api.strict import strict
from ctxbase.client.wire import Codec

#: Operations a client carries: every one with a route.
CLIENT_OPERATIONS = {name: op for name, op in OPERATIONS.items() if op.on != "library"}


class SubClient:
    """Base of ``client.memories``, ``client.events``, …: methods call the client's
    ``_invoke`` (sync) or ``_ainvoke`` (async) with their codec."""

    def __init__(self, client: Any) -> None:
        self._client = client


def _describe(function: Callable[..., Any], op: Operation, codec: Codec) -> None:
    function.__name__ = function.__qualname__ = op.method_name
    function.__doc__ = f"{op.summary}.\n\n``{op.method} {op.path}`` over HTTP."
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    params = [self_param, *codec.signature.parameters.values()]
    function.__signature__ = codec.signature.replace(parameters=params)  # type: ignore[attr-defined]


def sync_method(op: Operation) -> Callable[..., Any]:
    codec = Codec(op)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = self if not isinstance(self, SubClient) else self._client
        return client._invoke(codec, args, kwargs)

    _describe(method, op, codec)
    return method


def async_method(op: Operation) -> Callable[..., Any]:
    codec = Codec(op)

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = self if not isinstance(self, SubClient) else self._client
        return await client._ainvoke(codec, args, kwargs)

    _describe(method, op, codec)
    return method


def build_sub_clients(
    make: Callable[[Operation], Callable[..., Any]],
    custom: dict[str, type],
    suffix: str,
) -> tuple[dict[str, type[SubClient]], dict[str, Callable[..., Any]]]:
    """Sub-client classes per domain, and the methods of the client itself (``search``).

    ``custom`` maps a domain to a hand-written mixin whose methods replace the generated
    ones of the same name.
    """
    methods: dict[str, dict[str, Callable[..., Any]]] = {}
    top: dict[str, Callable[..., Any]] = {}
    for name, op in CLIENT_OPERATIONS.items():
        if "." not in name:
            if not op.custom_client:
                top[name] = make(op)
            continue
        if not op.custom_client:
            methods.setdefault(op.domain, {})[op.method_name] = make(op)
        else:
            methods.setdefault(op.domain, {})
    classes: dict[str, type[SubClient]] = {}
    for domain, members in methods.items():
        mixin = custom.get(domain)
        if mixin is not None:  # hand-written methods refuse unknown arguments by name too
            for attr, value in vars(mixin).items():
                if callable(value) and not attr.startswith("_"):
                    members.setdefault(attr, strict(value, f"{domain}.{attr}"))
        bases = (custom[domain], SubClient) if domain in custom else (SubClient,)
        title = "".join(part.title() for part in domain.split("_"))
        classes[domain] = type(f"{title}{suffix}", bases, dict(members))
    return classes, top
