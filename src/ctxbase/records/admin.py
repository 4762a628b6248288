"""Records of projects, tenants, API keys and the audit log, and their inputs."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from ctxbase.records.values import INT64_MAX, Input, JSONObject, JSONValue, Record, Slug, Text

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


#: A quota key of the tenant's own (ctxbase keeps it, the application enforces it).
_OWN_QUOTA_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
OWN_QUOTA_KEYS_LIMIT = 100


class Quotas(Input):
    """Limits of a tenant's plan; None means unlimited.

    ``projects``, ``items``, ``requests_per_minute`` and ``storage_bytes`` are enforced by
    ctxbase and validated as such. Any other key (a letter, then up to 63 letters, digits,
    ``_``, ``.`` or ``-``) is a quota of the application's own, kept with any JSON value
    and returned as given: ``{"projects": 10, "agents": 25}``.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, JSONValue] = Field(init=False)

    projects: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    items: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Messages, context units, memories and events stored, together."
    )
    requests_per_minute: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    storage_bytes: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Bytes of stored text and JSON, together."
    )

    @model_validator(mode="after")
    def _own_keys(self) -> Quotas:
        own = self.__pydantic_extra__ or {}
        if len(own) > OWN_QUOTA_KEYS_LIMIT:
            raise ValueError(f"at most {OWN_QUOTA_KEYS_LIMIT} quota keys of your own")
        for key in own:
            if not _OWN_QUOTA_KEY.match(key):
                raise ValueError(
                    f"quota key {key!r} must be a letter then up to 63 letters, digits, _ . -"
                )
        return self


class Tenant(Record):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    quotas: Quotas
    settings: dict[str, Any] = Field(description="Free settings of the tenant's own.")
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TenantIn(Input):
    slug: Slug
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] = "free"
    quotas: Quotas = Field(default_factory=Quotas)
    settings: JSONObject = Field(default_factory=dict, description="Free JSON of your own.")


class TenantPatch(Input):
    name: Annotated[Text, Field(max_length=200)] | None = None
    plan: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    quotas: Quotas | None = Field(None, description="Replaces the quotas (keys of your own too).")
    settings: JSONObject | None = Field(None, description="Replaces the free settings.")
    is_active: bool | None = Field(None, description="false deactivates: its keys stop at once.")


def _known_scope(scope: str) -> str:
    from ctxbase.api.scopes import check_scope  # the scopes are the operations' own

    return check_scope(scope)


#: A key scope: ``<domain>:read`` or ``<domain>:write`` of a declared operation, or a
#: wildcard such as ``memories:*`` or ``*:read`` (see :mod:`ctxbase.api.scopes`).
KeyScope = Annotated[str, Field(min_length=3, max_length=100), AfterValidator(_known_scope)]


class ApiKey(Record):
    """A key as listed: never the key itself, only its prefix to recognise it."""

    key_id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    role: Role
    projects: list[str] | None = Field(description="The only projects it sees; None: all.")
    scopes: list[str] | None = Field(
        None, description="The only scopes it holds (`memories:read`, `events:*`); None: all."
    )
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _all_when_empty(cls, value: Any) -> Any:
        return value or None  # stored as an empty list: every scope


class ApiKeyIn(Input):
    tenant: Slug | None = Field(None, description="Default: the caller's tenant.")
    role: Role
    name: Annotated[Text, Field(max_length=200)] = ""
    projects: list[Slug] | None = Field(None, max_length=1000)
    scopes: list[KeyScope] | None = Field(
        None,
        max_length=200,
        description="The only operations it may call, beside its role: `memories:read`, "
        "`events:write`, wildcards `memories:*`, `*:read`. None or empty: every scope.",
    )
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
