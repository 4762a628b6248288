"""Administration: ``/tenants``, ``/keys`` and ``/audit``.

Tenants are the operator's to manage; a tenant's admins manage its keys and read its audit
log. Keys are shown once, when created; lists show their prefix only.
"""

from __future__ import annotations

from fastapi import APIRouter

from ctxbase.server.deps import (
    StoreDep,
)
from ctxbase.server.routing import declared

router = APIRouter(tags=["administration"])


@declared(router, "tenants.usage")
def tenant_usage(tenant: str, store: StoreDep) -> dict[str, int]:
    store.tenants.get(tenant)  # 404 unless the caller may see it
    return store.tenants.usage(tenant)
