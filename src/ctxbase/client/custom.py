"""Client methods written by hand: state (its path holds the namespace, its version
travels in ETag / If-Match headers), server-sent event streams and health checks.

Each has the signature its declaration gives; the parity test checks them like the
generated ones. Each sync mixin has an async twin below it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ctxbase.api.spec import DEFAULT_PROJECT
from ctxbase.client.wire import Request, encode
from ctxbase.records import Event, StateEntry, StateIn
from ctxbase.store.base import parse
from ctxbase.store.state import check_key, check_namespace
from ctxbase.transfer.report import MigrationReport


def _state_path(project: str, namespace: str, key: str) -> str:
    namespace, key = check_namespace(namespace), check_key(key)  # the Store's own rules
    from urllib.parse import quote

    parts = ["projects", project, "state", *[p for p in namespace.split("/") if p], key]
    return "/" + "/".join(quote(part, safe="") for part in parts)


def _version_headers(expected_version: int | None, *, creating: bool) -> dict[str, str]:
    if expected_version == 0 and creating:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{expected_version}"'} if expected_version is not None else {}


def _state_put(
    key: str,
    value: Any,
    ttl_seconds: int | None,
    namespace: str,
    expected_version: int | None,
    project: str,
) -> Request:
    given = (
        {"value": value} if ttl_seconds is None else {"value": value, "ttl_seconds": ttl_seconds}
    )
    return Request(
        "PUT",
        _state_path(project, namespace, key),
        json=encode(parse(StateIn, given)),  # checked here as the server would
        headers=_version_headers(expected_version, creating=True),
    )


class StateMethods:
    """``client.state.get / put / delete``."""

    _client: Any

    def get(self, key: str, *, namespace: str = "", project: str = DEFAULT_PROJECT) -> StateEntry:
        request = Request("GET", _state_path(project, namespace, key))
        return StateEntry.model_validate(self._client._send(request).json())

    def put(
        self,
        key: str,
        value: Any,
        *,
        ttl_seconds: int | None = None,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> StateEntry:
        request = _state_put(key, value, ttl_seconds, namespace, expected_version, project)
        return StateEntry.model_validate(self._client._send(request).json())

    def delete(
        self,
        key: str,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        headers = _version_headers(expected_version, creating=False)
        self._client._send(Request("DELETE", _state_path(project, namespace, key), headers=headers))


class AsyncStateMethods:
    _client: Any

    async def get(
        self, key: str, *, namespace: str = "", project: str = DEFAULT_PROJECT
    ) -> StateEntry:
        request = Request("GET", _state_path(project, namespace, key))
        return StateEntry.model_validate((await self._client._asend(request)).json())

    async def put(
        self,
        key: str,
        value: Any,
        *,
        ttl_seconds: int | None = None,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> StateEntry:
        request = _state_put(key, value, ttl_seconds, namespace, expected_version, project)
        return StateEntry.model_validate((await self._client._asend(request)).json())

    async def delete(
        self,
        key: str,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        headers = _version_headers(expected_version, creating=False)
        request = Request("DELETE", _state_path(project, namespace, key), headers=headers)
        await self._client._asend(request)


def _events_path(project: str) -> str:
    return f"/projects/{project}/events/stream"


def _subscription_path(project: str, subscription_id: uuid.UUID | str) -> str:
    return f"/projects/{project}/subscriptions/{subscription_id}/stream"


class EventsMethods:
    _client: Any

    def stream(self, *, after: int = 0, project: str = DEFAULT_PROJECT) -> Iterator[Event]:
        """Events as they commit, from ``after``; stops when the server closes the stream."""
        for data in self._client._stream(_events_path(project), {"after": after}):
            yield Event.model_validate_json(data)


class AsyncEventsMethods:
    _client: Any

    async def stream(
        self, *, after: int = 0, project: str = DEFAULT_PROJECT
    ) -> AsyncIterator[Event]:
        async for data in self._client._astream(_events_path(project), {"after": after}):
            yield Event.model_validate_json(data)


class SubscriptionsMethods:
    _client: Any

    def stream(
        self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Iterator[Event]:
        """An ``sse`` subscription's events, from its cursor."""
        for data in self._client._stream(_subscription_path(project, subscription_id), {}):
            yield Event.model_validate_json(data)


class AsyncSubscriptionsMethods:
    _client: Any

    async def stream(
        self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> AsyncIterator[Event]:
        path = _subscription_path(project, subscription_id)
        async for data in self._client._astream(path, {}):
            yield Event.model_validate_json(data)


class MigrationsMethods:
    _client: Any

    def stream(self, job_id: uuid.UUID | str) -> Iterator[MigrationReport]:
        """The job's progress as it changes, until it ends."""
        for data in self._client._stream(f"/migrations/{job_id}/stream", {}, event="progress"):
            yield MigrationReport.model_validate(json.loads(data))


class AsyncMigrationsMethods:
    _client: Any

    async def stream(self, job_id: uuid.UUID | str) -> AsyncIterator[MigrationReport]:
        async for data in self._client._astream(
            f"/migrations/{job_id}/stream", {}, event="progress"
        ):
            yield MigrationReport.model_validate(json.loads(data))


SYNC_CUSTOM: dict[str, type] = {
    "state": StateMethods,
    "events": EventsMethods,
    "subscriptions": SubscriptionsMethods,
    "migrations": MigrationsMethods,
}
ASYNC_CUSTOM: dict[str, type] = {
    "state": AsyncStateMethods,
    "events": AsyncEventsMethods,
    "subscriptions": AsyncSubscriptionsMethods,
    "migrations": AsyncMigrationsMethods,
}
