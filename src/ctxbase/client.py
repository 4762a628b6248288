"""``ctxbase.Client``: the Store's methods over HTTP.

Each sub-client mirrors the Store sub-API of the same name, takes the same arguments,
returns the same records and raises the same error classes, so code written against a
local Store runs unchanged against a server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel

from ctxbase.errors import CtxbaseError, NotFoundError, error_class_for
from ctxbase.records import (
    Ack,
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    ContextIn,
    ContextUnit,
    ContextUpdate,
    Conversation,
    ConversationIn,
    ConversationPatch,
    DeadLetter,
    Event,
    EventBatch,
    EventIn,
    EventPage,
    Memory,
    MemoryChange,
    MemoryIn,
    MemoryPatch,
    Message,
    MessageIn,
    Page,
    PendingEvents,
    Project,
    ProjectIn,
    ProjectPatch,
    SearchFilters,
    SearchRequest,
    SearchResult,
    StateEntry,
    StateIn,
    Subscription,
    SubscriptionIn,
    Tenant,
    TenantIn,
    TenantPatch,
    search_values,
)
from ctxbase.store.base import DEFAULT_PAGE, DEFAULT_PROJECT, parse
from ctxbase.store.state import check_key, check_namespace

M = TypeVar("M", bound=BaseModel)


class Client:
    """A ctxbase server at ``base_url``, authenticated by ``api_key`` when given."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8420",
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )
        self.projects = ProjectsClient(self)
        self.conversations = ConversationsClient(self)
        self.messages = MessagesClient(self)
        self.contexts = ContextsClient(self)
        self.memories = MemoriesClient(self)
        self.state = StateClient(self)
        self.events = EventsClient(self)
        self.subscriptions = SubscriptionsClient(self)
        self.tenants = TenantsClient(self)
        self.keys = KeysClient(self)
        self.audit = AuditClient(self)

    def search(
        self,
        query: str,
        *,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
        k: int = 10,
        threshold: float | None = None,
        filters: SearchFilters | dict[str, Any] | None = None,
        distance: str = "cosine",
        project: str = DEFAULT_PROJECT,
    ) -> SearchResult:
        """:meth:`Store.search <ctxbase.store.search.Search.__call__>` over HTTP."""
        values = search_values(
            query,
            kinds=kinds,
            mode=mode,
            k=k,
            threshold=threshold,
            filters=filters,
            distance=distance,
        )
        body = _body(SearchRequest, values)
        response = self.request("POST", _path("projects", project, "search"), json=body)
        return SearchResult.model_validate(response.json())

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` report (also when it says the database is down)."""
        response = self._http.get("/health")
        if response.status_code not in (200, 503):
            _raise(response)
        body: dict[str, Any] = response.json()
        return body

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; any error envelope is raised as its ctxbase error class."""
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean, headers=headers)
        except httpx.TransportError as e:
            raise CtxbaseError(f"Cannot reach the ctxbase server: {e}") from e
        if response.status_code >= 400:
            _raise(response)
        return response

    def stream(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[Event]:
        """Events of an SSE stream, as they arrive; stops when the server closes it."""
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            with connect_sse(
                self._http, "GET", path, params=clean, timeout=httpx.Timeout(None, connect=10)
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    _raise(source.response)
                for message in source.iter_sse():
                    if message.event == "event":
                        yield Event.model_validate_json(message.data)
        except httpx.TransportError as e:
            raise CtxbaseError(f"Cannot reach the ctxbase server: {e}") from e

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, uuid.UUID) else value


def _raise(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "error", response.text or response.reason_phrase, None
    hint = details.pop("hint", None) if isinstance(details, dict) else None
    raise error_class_for(code, response.status_code)(message, details=details or None, hint=hint)


def _one(model: type[M], response: httpx.Response) -> M:
    return model.model_validate(response.json())


def _page(model: type[M], response: httpx.Response) -> Page[M]:
    return Page[model].model_validate(response.json())  # type: ignore[valid-type]


def _path(*parts: Any) -> str:
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


class _Sub:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, method: str, *parts: Any, **kwargs: Any) -> httpx.Response:
        return self._client.request(method, _path(*parts), **kwargs)


class ProjectsClient(_Sub):
    def create(
        self, slug: str, *, name: str | None = None, settings: dict[str, Any] | None = None
    ) -> Project:
        body = _body(ProjectIn, {"slug": slug, "name": name, "settings": settings or {}})
        return _one(Project, self._call("POST", "projects", json=body))

    def get(self, slug: str) -> Project:
        return _one(Project, self._call("GET", "projects", slug))

    def list(self, *, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> Page[Project]:
        return _page(
            Project, self._call("GET", "projects", params={"limit": limit, "cursor": cursor})
        )

    def update(
        self, slug: str, *, name: str | None = None, settings: dict[str, Any] | None = None
    ) -> Project:
        body = _body(ProjectPatch, {"name": name, "settings": settings})
        return _one(Project, self._call("PATCH", "projects", slug, json=body))

    def delete(self, slug: str) -> None:
        self._call("DELETE", "projects", slug)


class ConversationsClient(_Sub):
    def create(self, *, project: str = DEFAULT_PROJECT, **fields: Any) -> Conversation:
        return _one(
            Conversation,
            self._call(
                "POST", "projects", project, "conversations", json=_body(ConversationIn, fields)
            ),
        )

    def get(
        self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Conversation:
        return _one(
            Conversation, self._call("GET", "projects", project, "conversations", conversation_id)
        )

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        agent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Conversation]:
        params = {
            "agent_id": agent_id,
            "created_after": created_after,
            "created_before": created_before,
            "metadata": metadata,
            "limit": limit,
            "cursor": cursor,
        }
        return _page(
            Conversation, self._call("GET", "projects", project, "conversations", params=params)
        )

    def update(
        self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT, **fields: Any
    ) -> Conversation:
        changes = _body(ConversationPatch, {k: v for k, v in fields.items() if v is not None})
        response = self._call(
            "PATCH", "projects", project, "conversations", conversation_id, json=changes
        )
        return _one(Conversation, response)

    def delete(self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        self._call("DELETE", "projects", project, "conversations", conversation_id)


class MessagesClient(_Sub):
    def append(
        self, conversation_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT, **fields: Any
    ) -> Message:
        return self.append_many(conversation_id, [fields], project=project)[0]

    def append_many(
        self, conversation_id: uuid.UUID | str, messages: Any, *, project: str = DEFAULT_PROJECT
    ) -> list[Message]:
        body = [_body(MessageIn, m) for m in messages]
        response = self._call(
            "POST", "projects", project, "conversations", conversation_id, "messages", json=body
        )
        return [Message.model_validate(item) for item in response.json()]

    def get(self, message_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> Message:
        return _one(Message, self._call("GET", "projects", project, "messages", message_id))

    def list(
        self,
        conversation_id: uuid.UUID | str,
        *,
        project: str = DEFAULT_PROJECT,
        after: int | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Message]:
        params = {"after": after, "limit": limit, "cursor": cursor}
        response = self._call(
            "GET", "projects", project, "conversations", conversation_id, "messages", params=params
        )
        return _page(Message, response)


class ContextsClient(_Sub):
    def add(
        self,
        name: str,
        content: str,
        *,
        source_type: str = "note",
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        body = _body(
            ContextIn,
            {
                "name": name,
                "content": content,
                "source_type": source_type,
                "metadata": metadata or {},
            },
        )
        return _one(ContextUnit, self._call("POST", "projects", project, "contexts", json=body))

    def update(
        self,
        context_id: uuid.UUID | str,
        *,
        content: str,
        metadata: dict[str, Any] | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ContextUnit:
        body = _body(ContextUpdate, {"content": content, "metadata": metadata})
        return _one(
            ContextUnit, self._call("PUT", "projects", project, "contexts", context_id, json=body)
        )

    def get(self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        return _one(ContextUnit, self._call("GET", "projects", project, "contexts", context_id))

    def get_latest(self, name: str, *, project: str = DEFAULT_PROJECT) -> ContextUnit:
        page = self.list(project=project, name=name, limit=1)
        if not page.items:
            raise NotFoundError(f"No context unit named {name!r}")
        return page.items[0]

    def get_version(
        self, name: str, version: int, *, project: str = DEFAULT_PROJECT
    ) -> ContextUnit:
        page = self.list(project=project, name=name, version=version, limit=1)
        if not page.items:
            raise NotFoundError(f"No version {version} of context unit {name!r}")
        return page.items[0]

    def versions(
        self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> list[ContextUnit]:
        response = self._call("GET", "projects", project, "contexts", context_id, "versions")
        return _page(ContextUnit, response).items

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        source_type: str | None = None,
        name: str | None = None,
        include_superseded: bool = False,
        version: int | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[ContextUnit]:
        params = {
            "source_type": source_type,
            "name": name,
            "include_superseded": include_superseded,
            "version": version,
            "limit": limit,
            "cursor": cursor,
        }
        return _page(ContextUnit, self._call("GET", "projects", project, "contexts", params=params))

    def delete(self, context_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        self._call("DELETE", "projects", project, "contexts", context_id)


class MemoriesClient(_Sub):
    def add(
        self,
        content: str,
        *,
        project: str = DEFAULT_PROJECT,
        actor: str | None = None,
        **fields: Any,
    ) -> Memory:
        body = _body(MemoryIn, {"content": content, **fields})
        return _one(
            Memory,
            self._call("POST", "projects", project, "memories", json=body, headers=_actor(actor)),
        )

    def get(self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> Memory:
        return _one(Memory, self._call("GET", "projects", project, "memories", memory_id))

    def update(
        self,
        memory_id: uuid.UUID | str,
        *,
        project: str = DEFAULT_PROJECT,
        actor: str | None = None,
        **fields: Any,
    ) -> Memory:
        body = _body(MemoryPatch, {k: v for k, v in fields.items() if v is not None})
        response = self._call(
            "PATCH", "projects", project, "memories", memory_id, json=body, headers=_actor(actor)
        )
        return _one(Memory, response)

    def delete(self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        self._call("DELETE", "projects", project, "memories", memory_id)

    def history(
        self, memory_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> list[MemoryChange]:
        response = self._call("GET", "projects", project, "memories", memory_id, "history")
        return _page(MemoryChange, response).items

    def list(
        self,
        *,
        project: str = DEFAULT_PROJECT,
        agent_id: str | None = None,
        user_id: str | None = None,
        memory_type: str | None = None,
        conversation_id: uuid.UUID | str | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Memory]:
        params = {
            "agent_id": agent_id,
            "user_id": user_id,
            "memory_type": memory_type,
            "conversation_id": conversation_id,
            "limit": limit,
            "cursor": cursor,
        }
        return _page(Memory, self._call("GET", "projects", project, "memories", params=params))

    def prune(self, *, project: str = DEFAULT_PROJECT) -> int:
        deleted: int = self._call("POST", "projects", project, "memories", "prune").json()[
            "deleted"
        ]
        return deleted


class StateClient(_Sub):
    def get(self, key: str, *, namespace: str = "", project: str = DEFAULT_PROJECT) -> StateEntry:
        return _one(
            StateEntry,
            self._call("GET", "projects", project, "state", *_state_path(namespace, key)),
        )

    def put(
        self,
        key: str,
        value: Any,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        ttl_seconds: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> StateEntry:
        headers = {}
        if expected_version == 0:
            headers["If-None-Match"] = "*"
        elif expected_version is not None:
            headers["If-Match"] = f'"{expected_version}"'
        body = _body(StateIn, {"value": value, "ttl_seconds": ttl_seconds})
        response = self._call(
            "PUT",
            "projects",
            project,
            "state",
            *_state_path(namespace, key),
            json=body,
            headers=headers,
        )
        return _one(StateEntry, response)

    def delete(
        self,
        key: str,
        *,
        namespace: str = "",
        expected_version: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        headers = {"If-Match": f'"{expected_version}"'} if expected_version is not None else {}
        self._call(
            "DELETE", "projects", project, "state", *_state_path(namespace, key), headers=headers
        )

    def list(
        self,
        *,
        namespace: str = "",
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[StateEntry]:
        params = {"namespace": namespace, "limit": limit, "cursor": cursor}
        return _page(StateEntry, self._call("GET", "projects", project, "state", params=params))


class EventsClient(_Sub):
    def append(
        self,
        event_type: str,
        data: Any = None,
        *,
        metadata: dict[str, Any] | None = None,
        expected_sequence: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> Event:
        fields: dict[str, Any] = {"event_type": event_type, "metadata": metadata or {}}
        if data is not None:
            fields["data"] = data
        return self.append_many([fields], expected_sequence=expected_sequence, project=project)[0]

    def append_many(
        self,
        events: Any,
        *,
        expected_sequence: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> list[Event]:
        body = _body(
            EventBatch,
            {"events": [_body(EventIn, e) for e in events], "expected_sequence": expected_sequence},
        )
        response = self._call("POST", "projects", project, "events", json=body)
        return [Event.model_validate(item) for item in response.json()]

    def list(
        self, *, after: int = 0, limit: int = DEFAULT_PAGE, project: str = DEFAULT_PROJECT
    ) -> EventPage:
        params = {"after": after, "limit": limit}
        return _one(EventPage, self._call("GET", "projects", project, "events", params=params))

    def last_sequence(self, *, project: str = DEFAULT_PROJECT) -> int:
        return self.list(after=2**62, limit=1, project=project).last_sequence

    def stream(self, *, after: int = 0, project: str = DEFAULT_PROJECT) -> Iterator[Event]:
        """Events after ``after`` and then each new one as it commits (server-sent events)."""
        return self._client.stream(
            _path("projects", project, "events", "stream"), params={"after": after}
        )


class SubscriptionsClient(_Sub):
    def create(self, *, project: str = DEFAULT_PROJECT, **fields: Any) -> Subscription:
        body = _body(SubscriptionIn, fields)
        return _one(
            Subscription, self._call("POST", "projects", project, "subscriptions", json=body)
        )

    def get(
        self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Subscription:
        return _one(
            Subscription, self._call("GET", "projects", project, "subscriptions", subscription_id)
        )

    def list(
        self,
        *,
        agent_id: str | None = None,
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[Subscription]:
        params = {"agent_id": agent_id, "limit": limit, "cursor": cursor}
        return _page(
            Subscription, self._call("GET", "projects", project, "subscriptions", params=params)
        )

    def delete(self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT) -> None:
        self._call("DELETE", "projects", project, "subscriptions", subscription_id)

    def pending(
        self,
        subscription_id: uuid.UUID | str,
        *,
        limit: int = DEFAULT_PAGE,
        project: str = DEFAULT_PROJECT,
    ) -> PendingEvents:
        response = self._call(
            "GET",
            "projects",
            project,
            "subscriptions",
            subscription_id,
            "pending",
            params={"limit": limit},
        )
        return _one(PendingEvents, response)

    def ack(
        self, subscription_id: uuid.UUID | str, sequence: int, *, project: str = DEFAULT_PROJECT
    ) -> Subscription:
        body = _body(Ack, {"sequence": sequence})
        response = self._call(
            "POST", "projects", project, "subscriptions", subscription_id, "ack", json=body
        )
        return _one(Subscription, response)

    def dead_letters(
        self,
        subscription_id: uuid.UUID | str,
        *,
        project: str = DEFAULT_PROJECT,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[DeadLetter]:
        response = self._call(
            "GET",
            "projects",
            project,
            "subscriptions",
            subscription_id,
            "dead-letters",
            params={"limit": limit, "cursor": cursor},
        )
        return _page(DeadLetter, response)

    def stream(
        self, subscription_id: uuid.UUID | str, *, project: str = DEFAULT_PROJECT
    ) -> Iterator[Event]:
        """An ``sse`` subscription's events from its cursor, then live."""
        return self._client.stream(
            _path("projects", project, "subscriptions", subscription_id, "stream")
        )


class TenantsClient(_Sub):
    def create(self, slug: str, **fields: Any) -> Tenant:
        body = _body(TenantIn, {"slug": slug, **fields})
        return _one(Tenant, self._call("POST", "tenants", json=body))

    def get(self, slug: str) -> Tenant:
        return _one(Tenant, self._call("GET", "tenants", slug))

    def list(self, *, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> Page[Tenant]:
        return _page(
            Tenant, self._call("GET", "tenants", params={"limit": limit, "cursor": cursor})
        )

    def update(self, slug: str, **fields: Any) -> Tenant:
        body = _body(TenantPatch, fields)
        return _one(Tenant, self._call("PATCH", "tenants", slug, json=body))


class KeysClient(_Sub):
    def create(self, **fields: Any) -> ApiKeyCreated:
        """A new key; its ``key`` is shown this once."""
        return _one(ApiKeyCreated, self._call("POST", "keys", json=_body(ApiKeyIn, fields)))

    def list(
        self, *, tenant: str | None = None, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page[ApiKey]:
        params = {"tenant": tenant, "limit": limit, "cursor": cursor}
        return _page(ApiKey, self._call("GET", "keys", params=params))

    def revoke(self, key_id: uuid.UUID | str) -> ApiKey:
        return _one(ApiKey, self._call("DELETE", "keys", key_id))


class AuditClient(_Sub):
    def list(
        self, *, action: str | None = None, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page[AuditEntry]:
        params = {"action": action, "limit": limit, "cursor": cursor}
        return _page(AuditEntry, self._call("GET", "audit", params=params))


def _state_path(namespace: str, key: str) -> list[str]:
    namespace, key = check_namespace(namespace), check_key(key)  # the Store's own rules
    return [part for part in namespace.split("/") if part] + [key]


def _actor(actor: str | None) -> dict[str, str]:
    return {"X-Ctxbase-Agent": actor} if actor else {}


def _body(model: type[BaseModel], value: Any) -> dict[str, Any]:
    """Validate like the server does, so bad input fails the same way before any request."""
    return parse(model, value).model_dump(mode="json", exclude_unset=True)
