"""Administration: ``/tenants``, ``/keys`` and ``/audit``.

Tenants are the operator's to manage; a tenant's admins manage its keys and read its audit
log. Keys are shown once, when created; lists show their prefix only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ctxbase.records import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    Page,
    Tenant,
    TenantIn,
    TenantPatch,
)
from ctxbase.server.deps import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    PrincipalDep,
    StoreDep,
    actor_of,
)
from ctxbase.server.routing import declared

router = APIRouter(tags=["administration"])


@declared(router, "tenants.create")
def create_tenant(body: TenantIn, store: StoreDep, principal: PrincipalDep) -> Tenant:
    fields = body.model_dump(exclude={"slug"})
    return store.tenants.create(body.slug, actor=actor_of(principal), **fields)


@declared(router, "tenants.list")
def list_tenants(
    store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[Tenant]:
    return store.tenants.list(limit=limit, cursor=cursor)


@declared(router, "tenants.get")
def get_tenant(tenant: str, store: StoreDep) -> Tenant:
    return store.tenants.get(tenant)


@declared(router, "tenants.update")
def update_tenant(
    tenant: str, body: TenantPatch, store: StoreDep, principal: PrincipalDep
) -> Tenant:
    changes = body.model_dump(exclude_unset=True)
    return store.tenants.update(tenant, actor=actor_of(principal), **changes)


@declared(router, "tenants.usage")
def tenant_usage(tenant: str, store: StoreDep) -> dict[str, int]:
    store.tenants.get(tenant)  # 404 unless the caller may see it
    return store.tenants.usage(tenant)


@declared(router, "keys.create")
def create_key(body: ApiKeyIn, store: StoreDep, principal: PrincipalDep) -> ApiKeyCreated:
    return store.keys.create(actor=actor_of(principal), **body.model_dump())


@declared(router, "keys.list")
def list_keys(
    store: StoreDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ApiKey]:
    return store.keys.list(tenant=tenant, limit=limit, cursor=cursor)


@declared(router, "keys.revoke")
def revoke_key(key_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> ApiKey:
    return store.keys.revoke(key_id, actor=actor_of(principal))


@declared(router, "audit.list")
def audit_log(
    store: StoreDep,
    action: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AuditEntry]:
    return store.audit.list(action=action, limit=limit, cursor=cursor)
