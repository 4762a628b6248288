"""Client methods written by hand: state (its path holds the namespace, its version
travels in ETag / If-Match headers) and server-sent event streams.

Each is written once, as a *plan*: a function with the operation's signature that says
what to send and how to read the answer (:class:`Call`) or which stream to follow
(:class:`Stream`). The sync and async clients run the same plans; the parity test checks
their signatures like the generated methods'.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ctxbase.api.spec import DEFAULT_PROJECT
from ctxbase.api.strict import strict
from ctxbase.client.wire import Request, encode
from ctxbase.records import Event, StateEntry, StateIn
from ctxbase.store.base import parse
from ctxbase.store.state import check_key, check_namespace
from ctxbase.transfer.report import MigrationReport


@dataclass(frozen=True)
class Call:
    """One request, and how its response becomes the result."""

    request: Request
    read: Callable[[httpx.Response], Any]


@dataclass(frozen=True)
class Stream:
    """A server-sent event stream: which events to take, and how each becomes a result."""

    path: str
    params: dict[str, Any]
    event: str
    read: Callable[[str], Any]


def _state_path(project: str, namespace: str, key: str) -> str:
    namespace, key = check_namespace(namespace), check_key(key)  # the Store's own rules
    parts = ["projects", project, "state", *[p for p in namespace.split("/") if p], key]
    return "/" + "/".join(quote(part, safe="") for part in parts)


def _version_headers(expected_version: int | None, *, creating: bool) -> dict[str, str]:
    if expected_version == 0 and creating:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{expected_version}"'} if expected_version is not None else {}


def _entry(response: httpx.Response) -> StateEntry:
    return StateEntry.model_validate(response.json())


def _event(data: str) -> Event:
    return Event.model_validate_json(data)


def state_get(key: str, *, namespace: str = "", project: str = DEFAULT_PROJECT) -> Call:
    return Call(Request("GET", _state_path(project, namespace, key)), _entry)


def state_put(
    key: str,
    value: Any,
    *,
    ttl_seconds: int | None = None,
    owner_conversation_id: uuid.UUID | str | None = None,
    namespace: str = "",
    expected_version: int | None = None,
    project: str = DEFAULT_PROJECT,
) -> Call:
    optional = {"ttl_seconds": ttl_seconds, "owner_conversation_id": owner_conversation_id}
    given = {"value": value, **{k: v for k, v in optional.items() if v is not None}}
    request = Request(
        "PUT",
        _state_path(project, namespace, key),
        json=encode(parse(StateIn, given)),  # checked here as the server would
        headers=_version_headers(expected_version, creating=True),
    )
    return Call(request, _entry)


def state_delete(
    key: str,
    *,
    namespace: str = "",
    expected_version: int | None = None,
    project: str = DEFAULT_PROJECT,
) -> Call:
    headers = _version_headers(expected_version, creating=False)
    return Call(Request("DELETE", _state_path(project, namespace, key), headers=headers), bool)


def events_stream(*, after: int = 0, project: str = DEFAULT_PROJECT) -> Stream:
    """Events as they commit, from ``after``; ends when the server closes the stream."""
    return Stream(f"/projects/{project}/events/stream", {"after": after}, "event", _event)


def subscriptions_stream(
    subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
) -> Stream:
    """An ``sse`` subscription's events, from its cursor."""
    path = f"/projects/{project}/subscriptions/{subscription_id}/stream"
    return Stream(path, {}, "event", _event)


def migrations_stream(job_id: uuid.UUID | str) -> Stream:
    """The job's progress as it changes, until it ends."""
    read = lambda data: MigrationReport.model_validate(json.loads(data))  # noqa: E731
    return Stream(f"/migrations/{job_id}/stream", {}, "progress", read)


def jobs_stream(job_id: uuid.UUID | str) -> Stream:
    """A job's progress (a migration or a re-embedding) as it changes, until it ends."""
    read = lambda data: MigrationReport.model_validate(json.loads(data))  # noqa: E731
    return Stream(f"/jobs/{job_id}/stream", {}, "progress", read)


PLANS: dict[str, Callable[..., Call | Stream]] = {
    "state.get": state_get,
    "state.put": state_put,
    "state.delete": state_delete,
    "events.stream": events_stream,
    "subscriptions.stream": subscriptions_stream,
    "migrations.stream": migrations_stream,
    "jobs.stream": jobs_stream,
}


def _describe(method: Callable[..., Any], plan: Callable[..., Any], name: str) -> None:
    method.__name__ = method.__qualname__ = name.rpartition(".")[2]
    method.__doc__ = plan.__doc__
    signature = inspect.signature(plan)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*params, *signature.parameters.values()], return_annotation=Any
    )


def sync_method(name: str) -> Callable[..., Any]:
    plan = PLANS[name]

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        planned = plan(*args, **kwargs)
        if isinstance(planned, Stream):
            return map(
                planned.read, self._client._stream(planned.path, planned.params, planned.event)
            )
        result = planned.read(self._client._send(planned.request))
        return None if planned.read is bool else result

    _describe(method, plan, name)
    return strict(method, name)


def async_method(name: str) -> Callable[..., Any]:
    plan = PLANS[name]

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        planned = plan(*args, **kwargs)
        if isinstance(planned, Stream):
            return _aiterate(self._client, planned)
        return _arun(self._client, planned)

    _describe(method, plan, name)
    return strict(method, name)


async def _arun(client: Any, planned: Call) -> Any:
    result = planned.read(await client._asend(planned.request))
    return None if planned.read is bool else result


async def _aiterate(client: Any, planned: Stream) -> Any:
    async for data in client._astream(planned.path, planned.params, planned.event):
        yield planned.read(data)
