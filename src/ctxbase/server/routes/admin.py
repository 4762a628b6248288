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

router = APIRouter(tags=["administration"])


@router.post("/tenants", status_code=201, response_model=Tenant, summary="Create a tenant")
def create_tenant(body: TenantIn, store: StoreDep, principal: PrincipalDep) -> Tenant:
    fields = body.model_dump(exclude={"slug"})
    return store.tenants.create(body.slug, actor=actor_of(principal), **fields)


@router.get("/tenants", response_model=Page[Tenant], summary="List tenants")
def list_tenants(
    store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[Tenant]:
    return store.tenants.list(limit=limit, cursor=cursor)


@router.get("/tenants/{tenant}", response_model=Tenant, summary="Get a tenant")
def get_tenant(tenant: str, store: StoreDep) -> Tenant:
    return store.tenants.get(tenant)


@router.patch(
    "/tenants/{tenant}",
    response_model=Tenant,
    summary="Change a tenant's name, plan or quotas; `is_active: false` deactivates it",
)
def update_tenant(
    tenant: str, body: TenantPatch, store: StoreDep, principal: PrincipalDep
) -> Tenant:
    changes = body.model_dump(exclude_unset=True)
    return store.tenants.update(tenant, actor=actor_of(principal), **changes)


@router.post(
    "/keys",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key; the response holds the key, shown this once",
)
def create_key(body: ApiKeyIn, store: StoreDep, principal: PrincipalDep) -> ApiKeyCreated:
    return store.keys.create(actor=actor_of(principal), **body.model_dump())


@router.get("/keys", response_model=Page[ApiKey], summary="List API keys (prefixes only)")
def list_keys(
    store: StoreDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ApiKey]:
    return store.keys.list(tenant=tenant, limit=limit, cursor=cursor)


@router.delete("/keys/{key_id}", response_model=ApiKey, summary="Revoke an API key at once")
def revoke_key(key_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> ApiKey:
    return store.keys.revoke(key_id, actor=actor_of(principal))


@router.get(
    "/audit", response_model=Page[AuditEntry], summary="Administrative actions, newest first"
)
def audit_log(
    store: StoreDep,
    action: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AuditEntry]:
    return store.audit.list(action=action, limit=limit, cursor=cursor)
