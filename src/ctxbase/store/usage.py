"""What a tenant stores, measured for its quotas.

Counting is a scan of the tenant's rows, so the server keeps each tenant's figures for a
few seconds (see :class:`UsageCache`): a quota can be overrun by the writes of those few
seconds, never by more.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Text, cast, func, select

from ctxbase.db.schema import ContextUnit, Event, Memory, Message, Project, table

_STORED = [
    (table(Message), "content"),
    (table(ContextUnit), "content"),
    (table(Memory), "content"),
    (table(Event), "data"),
]


def tenant_usage(connection: Connection, tenant_id: uuid.UUID) -> dict[str, int]:
    projects = table(Project)
    ids = select(projects.c.id).where(projects.c.tenant_id == tenant_id)
    usage = {
        "projects": int(
            connection.execute(
                select(func.count()).select_from(projects).where(projects.c.tenant_id == tenant_id)
            ).scalar_one()
        ),
        "items": 0,
        "storage_bytes": 0,
    }
    for items, column in _STORED:
        value = items.c[column]
        text = value if column == "content" else cast(value, Text)
        count, size = connection.execute(
            select(func.count(), func.coalesce(func.sum(func.length(text)), 0)).where(
                items.c.project_id.in_(ids)
            )
        ).one()
        usage["items"] += int(count)
        usage["storage_bytes"] += int(size)
    return usage


class UsageCache:
    """Each tenant's usage, measured at most every ``ttl`` seconds."""

    def __init__(self, measure: Callable[[str], dict[str, int]], ttl: float = 5.0) -> None:
        self._measure = measure
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, int]]] = {}

    def get(self, tenant: str) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(tenant)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        usage = self._measure(tenant)
        with self._lock:
            self._cache[tenant] = (now, usage)
        return usage

    def forget(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant, None)
