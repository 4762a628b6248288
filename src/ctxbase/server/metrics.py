"""Prometheus metrics: requests, database queries, connection pool, stored rows.

Each app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxbase.db.schema import metadata
from ctxbase.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COUNTED_TABLES = {
    "project": "projects",
    "conversation": "conversations",
    "message": "messages",
    "context": "context_units",
    "memory": "memories",
    "state": "state_entries",
    "embedding": "embeddings",
    "event": "events",
    "subscription": "subscriptions",
}
_QUERY_START = "ctxbase_query_started"


class Metrics:
    """The metrics of one app over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ctxbase_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ctxbase_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.queries = Histogram(
            "ctxbase_db_query_duration_seconds",
            "Database statement latency",
            ["backend"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))
        self._observer = self.queries.labels(store.backend).observe
        self._listen(store)

    def _listen(self, store: Store) -> None:
        engine, backend = store.db.engine, store.backend
        observe = self.queries.labels(backend).observe

        @event.listens_for(engine, "before_cursor_execute")
        def started(conn: Any, *_args: Any) -> None:
            conn.info.setdefault(_QUERY_START, []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def finished(conn: Any, *_args: Any) -> None:
            starts = conn.info.get(_QUERY_START)
            if starts:
                observe(time.perf_counter() - starts.pop())

        self._listeners = [
            (engine, "before_cursor_execute", started),
            (engine, "after_cursor_execute", finished),
        ]

    def close(self) -> None:
        if self._observer in self.store.db.query_observers:
            self.store.db.query_observers.remove(self._observer)
        for target, name, listener in self._listeners:
            if event.contains(target, name, listener):
                event.remove(target, name, listener)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """Pool usage and row counts, read when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self.store.db.engine.pool
        in_use = GaugeMetricFamily("ctxbase_db_pool_in_use", "Connections checked out")
        idle = GaugeMetricFamily("ctxbase_db_pool_idle", "Connections idle in the pool")
        in_use.add_metric([], float(pool.checkedout()) if hasattr(pool, "checkedout") else 0.0)
        idle.add_metric([], float(pool.checkedin()) if hasattr(pool, "checkedin") else 0.0)
        rows = GaugeMetricFamily("ctxbase_rows", "Stored records by kind", labels=["kind"])
        with self.store.db.connect() as connection:
            for kind, table in COUNTED_TABLES.items():
                count = connection.execute(
                    select(func.count()).select_from(metadata.tables[table])
                ).scalar()
                rows.add_metric([kind], float(count or 0))
        yield from (in_use, idle, rows)


class MetricsMiddleware:
    """Counts and times every request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, prefix: str = "") -> None:
        self.app, self.prefix = app, prefix

    def _route(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if path is None:
            return "unmatched"  # one label for every unknown path: no unbounded cardinality
        return path if path.startswith(self.prefix) else self.prefix + path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, capture)
        finally:
            metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                route = self._route(scope)
                method = scope["method"]
                metrics.requests.labels(method, route, str(status[0])).inc()
                metrics.latency.labels(method, route).observe(time.perf_counter() - started)
