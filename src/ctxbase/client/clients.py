"""``ctxbase.Client`` and ``ctxbase.AsyncClient``: the Store's operations over HTTP.

Each sub-client mirrors the Store sub-API of the same name, takes the same arguments,
returns the same records and raises the same error classes, so code written against a
local Store runs unchanged against a server. The methods are made from the operation
declarations (:mod:`ctxbase.api`); the server's administration operations (database
configurations, migrations, re-embedding jobs) are there too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from ctxbase.api.strict import strict
from ctxbase.client import custom
from ctxbase.client.methods import SubClient, async_method, build_sub_clients, sync_method
from ctxbase.client.wire import Codec, Request, raise_for
from ctxbase.errors import CtxbaseError

DEFAULT_URL = "http://127.0.0.1:8420"
_SYNC_CLASSES, _SYNC_TOP = build_sub_clients(sync_method, custom.sync_method, "Client")
_ASYNC_CLASSES, _ASYNC_TOP = build_sub_clients(async_method, custom.async_method, "AsyncClient")
_STREAM_TIMEOUT = httpx.Timeout(None, connect=10)


def _http_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"base_url": base_url.rstrip("/") + "/api/v1", "headers": headers, "timeout": timeout}


@contextmanager
def _reaching_server() -> Iterator[None]:
    """A transport error (no connection, a timeout) as a CtxbaseError saying so."""
    try:
        yield
    except httpx.TransportError as e:
        raise CtxbaseError(f"Cannot reach the ctxbase server: {e}") from e


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _http_request(request: Request) -> dict[str, Any]:
    """The arguments of ``httpx.Client.request`` that send ``request``."""
    return {
        "method": request.method,
        "url": request.path,
        "params": _clean(request.params),
        "json": request.json,
        "headers": request.headers,
    }


def _checked(response: httpx.Response, check: bool) -> httpx.Response:
    if check and response.status_code >= 400:
        raise_for(response)
    return response


def _health(response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (200, 503):
        raise_for(response)
    body: dict[str, Any] = response.json()
    return body


class _Surface:
    """Attributes both clients share: a sub-client per domain, set in ``__init__``."""

    def _attach(self, classes: dict[str, type[SubClient]]) -> None:
        for domain, cls in classes.items():
            setattr(self, domain, cls(self))


class Client(_Surface):
    """A ctxbase server at ``base_url``, authenticated by ``api_key`` when given.

    ``make serve`` prints an admin key on its first start; ``ctxbase keys create`` makes
    others. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**_http_options(base_url, api_key, timeout), transport=transport)
        self._attach(_SYNC_CLASSES)

    def _invoke(self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return codec.result(self._send(codec.request(args, kwargs), check=False))

    def _send(self, request: Request, *, check: bool = True) -> httpx.Response:
        with _reaching_server():
            return _checked(self._http.request(**_http_request(request)), check)

    def _stream(self, path: str, params: dict[str, Any], event: str = "event") -> Iterator[str]:
        with (
            _reaching_server(),
            connect_sse(
                self._http, "GET", path, params=_clean(params), timeout=_STREAM_TIMEOUT
            ) as source,
        ):
            if source.response.status_code >= 400:
                source.response.read()
                raise_for(source.response)
            for message in source.iter_sse():
                if message.event == event:
                    yield message.data

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` report (also when it says the database is down)."""
        return _health(self._send(Request("GET", "/health"), check=False))

    def ready(self) -> bool:
        """Whether the server can take traffic."""
        return bool(self._send(Request("GET", "/ready"), check=False).status_code == 200)

    def metrics(self) -> str:
        """The Prometheus metrics text (an operator's admin key)."""
        return self._send(Request("GET", "/metrics")).text

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Send any request under ``/api/v1``; an error answer is raised as its class."""
        return self._send(Request(method, path, **options))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class AsyncClient(_Surface):
    """:class:`Client` for asyncio: the same methods, awaited."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = _http_options(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(**options, transport=transport)
        self._attach(_ASYNC_CLASSES)

    async def _ainvoke(self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return codec.result(await self._asend(codec.request(args, kwargs), check=False))

    async def _asend(self, request: Request, *, check: bool = True) -> httpx.Response:
        with _reaching_server():
            return _checked(await self._http.request(**_http_request(request)), check)

    async def _astream(
        self, path: str, params: dict[str, Any], event: str = "event"
    ) -> AsyncIterator[str]:
        with _reaching_server():
            async with aconnect_sse(
                self._http, "GET", path, params=_clean(params), timeout=_STREAM_TIMEOUT
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise_for(source.response)
                async for message in source.aiter_sse():
                    if message.event == event:
                        yield message.data

    async def health(self) -> dict[str, Any]:
        return _health(await self._asend(Request("GET", "/health"), check=False))

    async def ready(self) -> bool:
        return bool((await self._asend(Request("GET", "/ready"), check=False)).status_code == 200)

    async def metrics(self) -> str:
        return (await self._asend(Request("GET", "/metrics"))).text

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return await self._asend(Request(method, path, **options))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


for _client in (Client, AsyncClient):  # hand-written ones refuse unknown arguments too
    for _name in ("health", "ready", "metrics"):
        setattr(_client, _name, strict(getattr(_client, _name), _name))
for _name, _method in _SYNC_TOP.items():
    setattr(Client, _name, _method)
for _name, _method in _ASYNC_TOP.items():
    setattr(AsyncClient, _name, _method)
