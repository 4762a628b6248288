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
    custom: Callable[[str], Callable[..., Any]],
    suffix: str,
) -> tuple[dict[str, type[SubClient]], dict[str, Callable[..., Any]]]:
    """Sub-client classes per domain, and the methods of the client itself (``search``).

    ``make`` builds a method from a declaration; ``custom`` builds the hand-written ones
    (:mod:`ctxbase.client.custom`) of the operations marked ``custom_client``.
    """
    methods: dict[str, dict[str, Callable[..., Any]]] = {}
    top: dict[str, Callable[..., Any]] = {}
    for name, op in CLIENT_OPERATIONS.items():
        if "." not in name:
            if not op.custom_client:  # health, ready, metrics are the clients' own
                top[name] = make(op)
            continue
        members = methods.setdefault(op.domain, {})
        members[op.method_name] = custom(name) if op.custom_client else make(op)
    classes: dict[str, type[SubClient]] = {}
    for domain, members in methods.items():
        title = "".join(part.title() for part in domain.split("_"))
        classes[domain] = type(f"{title}{suffix}", (SubClient,), dict(members))
    return classes, top
