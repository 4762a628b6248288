"""Records of projects, tenants, API keys and the audit log, and their inputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
)

from ctxbase.records.values import INT64_MAX, Input, JSONObject, Record, Slug, Text

# --- projects -----------------------------------------------------------------------------


class Project(Record):
    id: uuid.UUID
    slug: str
    name: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProjectIn(Input):
    slug: Slug
    name: Annotated[Text, Field(max_length=200)] | None = None
    settings: JSONObject = Field(default_factory=dict)


class ProjectPatch(Input):
    name: Annotated[Text, Field(max_length=200)] | None = None
    settings: JSONObject | None = None


# --- tenants, keys, audit -----------------------------------------------------------------

Role = Literal["admin", "writer", "reader"]


class Quotas(Input):
    """Limits of a tenant's plan; None means unlimited."""

    projects: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    items: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Messages, context units, memories and events stored, together."
    )
    requests_per_minute: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    storage_bytes: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Bytes of stored text and JSON, together."
    )


class Tenant(Record):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    quotas: Quotas
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TenantIn(Input):
    slug: Slug
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] = "free"
    quotas: Quotas = Field(default_factory=Quotas)


class TenantPatch(Input):
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    quotas: Quotas | None = None
    is_active: bool | None = Field(None, description="false deactivates: its keys stop at once.")


class ApiKey(Record):
    """A key as listed: never the key itself, only its prefix to recognise it."""

    key_id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    role: Role
    projects: list[str] | None = Field(description="The only projects it sees; None: all.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIn(Input):
    tenant: Slug | None = Field(None, description="Default: the caller's tenant.")
    role: Role
    name: Annotated[Text, Field(max_length=200)] = ""
    projects: list[Slug] | None = Field(None, max_length=1000)
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class AuditEntry(Record):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    created_at: datetime
