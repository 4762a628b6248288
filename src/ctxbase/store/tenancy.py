"""Tenants, API keys and the audit log.

A key is ``cbk_<8 random>_<40 random>``: 282 bits of randomness, so a plain SHA-256 of it
is a safe stored form (a slow password hash protects guessable secrets; these are not).
Only that hash and the first 12 characters (to recognise a key in a list) are stored. A
key is found by its prefix and then compared by hash in constant time, and an unknown
prefix is compared against a dummy hash, so the answer takes the same time however much
of a key is right.

A key holds rights (a role, the projects it is limited to, the scopes it holds, an expiry)
and passes on only what it holds: it creates keys of no higher role, limited to some of
its own projects (an unlimited key only from an unlimited one), holding scopes it holds
(a key of every scope only from one of every scope) and expiring no later than itself; it
revokes and lists only keys within its reach (limited to some of its projects, holding
some of its scopes), and reads only the audit entries of its projects. A key or entry out
of reach is simply not found.

Revoking a key, or changing a tenant (deactivating it, changing its quotas), changes the
database's key generation (:mod:`ctxbase.store.key_generation`): a server process caching
keys reads it on every request and forgets its cache when it has changed, so a revoked
key stops at once on every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, func, insert, select, update

from ctxbase.db.schema import ApiKey as ApiKeyRow
from ctxbase.db.schema import AuditEntry as AuditRow
from ctxbase.db.schema import new_id, table, utcnow
from ctxbase.errors import ConflictError, NotFoundError, PermissionDeniedError
from ctxbase.records import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    Page,
    Quotas,
    Role,
    Tenant,
    TenantIn,
    TenantPatch,
)
from ctxbase.store.base import (
    DEFAULT_PAGE,
    DEFAULT_TENANT,
    Domain,
    Keyset,
    as_uuid,
    given,
    page_limit,
    parse,
    projects_table,
    tenants_table,
    text_part,
    uuid_part,
)
from ctxbase.store.key_generation import bump_key_generation
from ctxbase.store.usage import tenant_usage

if TYPE_CHECKING:
    from ctxbase.store.base import Scope

keys_table = table(ApiKeyRow)
audit_table = table(AuditRow)
k = keys_table.c
t = tenants_table.c
_tenant_pages = Keyset("tenants", (text_part(64),))  # by slug
_key_pages = Keyset("keys", (uuid_part,))
_audit_pages = Keyset("audit", (uuid_part,))
KEY_PREFIX = "cbk_"
_PREFIX_LENGTH = len(KEY_PREFIX) + 8
#: The tenant that owns the server: its admin keys administer every tenant and the server.
OPERATOR_TENANT = DEFAULT_TENANT
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
_ROLE_RANK = {"reader": 0, "writer": 1, "admin": 2}
#: Rows read per round trip while filtering a list by reach in Python.
_SCAN_BATCH = 500


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return f"{KEY_PREFIX}{secrets.token_urlsafe(6)[:8]}_{secrets.token_urlsafe(30)}"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key of one tenant, with its role and project limits."""

    key_id: uuid.UUID | None
    tenant: str
    tenant_id: uuid.UUID | None
    role: str
    projects: frozenset[str] | None
    prefix: str
    quotas: Quotas
    expires_at: datetime | None = None
    #: The only scopes the key holds (``memories:read``, ``events:*``); None: every one.
    scopes: frozenset[str] | None = None

    @property
    def server_admin(self) -> bool:
        """An unlimited admin key of the operator tenant: it runs the server. A key limited
        to projects never does, whatever its tenant."""
        return self.role == "admin" and self.tenant == OPERATOR_TENANT and self.projects is None

    @property
    def actor(self) -> str:
        return f"key:{self.prefix}"


def _tenant_record(row: Any) -> Tenant:
    return Tenant.model_validate(
        {**row, "quotas": row["quotas"] or {}, "settings": row["settings"] or {}}
    )


class _TenantDomain(Domain):
    def _require_tenant(self, slug: str) -> None:
        """Another tenant than the caller's is not found, unless the caller runs the server."""
        scope = self._store.scope
        if not scope.server_admin and slug != scope.tenant:
            raise NotFoundError(f"No tenant {slug!r}")


class Tenants(_TenantDomain):
    """``store.tenants``: server administration (the library's view may do it all)."""

    def create(
        self,
        slug: str,
        *,
        name: str | None = None,
        plan: str = "free",
        quotas: Quotas | dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        actor: str = "library",
    ) -> Tenant:
        """Create a tenant (server administration); ``actor`` names the caller in the audit
        log. ``quotas`` may hold keys of the application's own beside the enforced ones,
        and ``settings`` is free JSON; both are kept and returned as given."""
        self._require_server_admin()
        data = parse(TenantIn, given(TenantIn, locals()))
        self._check_own_json(data.quotas, data.settings)
        now = utcnow()
        tenant_id = new_id()
        row = {
            "id": tenant_id,
            "slug": data.slug,
            "name": data.name or data.slug,
            "plan": data.plan,
            "quotas": data.quotas.model_dump(exclude_none=True),
            "settings": data.settings,
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        with self._db.connect(write=True) as connection:
            if connection.execute(select(t.id).where(t.slug == data.slug)).first():
                raise ConflictError(f"Tenant {data.slug!r} already exists")
            connection.execute(insert(tenants_table), row)
            record_audit(connection, actor, "tenant.create", data.slug, tenant_id, {})
        return _tenant_record(row)

    def get(self, slug: str) -> Tenant:
        self._require_tenant(slug)
        with self._db.connect() as connection:
            row = connection.execute(select(tenants_table).where(t.slug == slug)).first()
        if row is None:
            raise NotFoundError(f"No tenant {slug!r}")
        return _tenant_record(row._mapping)

    def list(self, *, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> Page[Tenant]:
        self._require_server_admin()
        page_limit(limit)
        after = _tenant_pages.decode(cursor, ())[0] if cursor else None
        query = select(tenants_table).order_by(t.slug).limit(limit + 1)
        if after is not None:
            query = query.where(t.slug > after)
        with self._db.connect() as connection:
            items = [_tenant_record(r._mapping) for r in connection.execute(query)]
        return _tenant_pages.page(items, limit, lambda item: [item.slug], ())

    def update(
        self,
        slug: str,
        *,
        name: str | None = None,
        plan: str | None = None,
        quotas: Quotas | dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        is_active: bool | None = None,
        actor: str = "library",
    ) -> Tenant:
        """Change name, plan, quotas or settings (each given one replaced whole);
        ``is_active=False`` deactivates (keys stop at once)."""
        self._require_server_admin()
        patch = parse(TenantPatch, given(TenantPatch, locals()))
        self._check_own_json(patch.quotas, patch.settings)
        changes = patch.model_dump(exclude_none=True, exclude={"quotas"})
        if patch.quotas is not None:
            changes["quotas"] = patch.quotas.model_dump(exclude_none=True)
        if slug == OPERATOR_TENANT and patch.is_active is False:
            raise PermissionDeniedError("The operator tenant cannot be deactivated")
        with self._db.connect(write=True) as connection:
            row = connection.execute(
                update(tenants_table)
                .where(t.slug == slug)
                .values(**changes, updated_at=utcnow())
                .returning(*tenants_table.c)
            ).first()
            if row is None:
                raise NotFoundError(f"No tenant {slug!r}")
            bump_key_generation(connection)  # its keys' principals (quotas, activity) changed
            action = "tenant.deactivate" if patch.is_active is False else "tenant.update"
            record_audit(
                connection,
                actor,
                action,
                slug,
                row.id,
                patch.model_dump(mode="json", exclude_none=True),
            )
        return _tenant_record(row._mapping)

    def usage(self, slug: str) -> dict[str, int]:
        """What the tenant stores now: projects, items, and bytes of text and JSON."""
        with self._db.connect() as connection:
            tenant_id = connection.execute(select(t.id).where(t.slug == slug)).scalar()
            if tenant_id is None:
                raise NotFoundError(f"No tenant {slug!r}")
            return tenant_usage(connection, tenant_id)

    def _require_server_admin(self) -> None:
        if not self._store.scope.server_admin:
            raise PermissionDeniedError("Only the operator's admin keys manage tenants")

    def _check_own_json(self, quotas: Quotas | None, settings: dict[str, Any] | None) -> None:
        """Quotas and settings are free JSON of the tenant's own: held to the metadata
        limit like any other."""
        if quotas is not None:
            self._check_json("quotas", quotas.model_dump(mode="json", exclude_none=True))
        self._check_json("settings", settings)


class Keys(_TenantDomain):
    """``store.keys``: API keys. A tenant's admins manage the keys within their reach; the
    operator's, all."""

    def create(
        self,
        *,
        tenant: str | None = None,
        role: Role,
        name: str = "",
        projects: list[str] | None = None,
        scopes: list[str] | None = None,
        expires_in_days: int | None = None,
        actor: str = "library",
    ) -> ApiKeyCreated:
        """A new key, returned with the key itself this once (only its hash is kept).

        It holds no right the caller lacks: a role no higher, projects among the caller's
        (unlimited only from an unlimited caller), scopes the caller holds (every scope
        only from a caller holding every scope), an expiry no later than the caller's.
        ``scopes`` None or empty: every scope the role allows.
        """
        data = parse(ApiKeyIn, given(ApiKeyIn, locals()))
        scope = self._store.scope
        tenant = data.tenant or scope.tenant
        _require_key_admin(scope)
        self._require_tenant(tenant)
        _check_role_held(scope, data.role)
        held_scopes = sorted(set(data.scopes)) if data.scopes else None
        _check_scopes_held(scope, held_scopes)
        key = new_key()
        now = utcnow()
        expires = now + timedelta(days=data.expires_in_days) if data.expires_in_days else None
        _check_expiry_held(scope, expires)
        with self._db.connect(write=True) as connection:
            tenant_id = connection.execute(
                select(t.id).where(t.slug == tenant, t.is_active.is_(True))
            ).scalar()
            if tenant_id is None:
                raise NotFoundError(f"No tenant {tenant!r}")
            _check_projects_held(connection, scope, tenant, tenant_id, data.projects)
            row = {
                "key_id": new_id(),
                "tenant_id": tenant_id,
                "name": data.name,
                "prefix": key[:_PREFIX_LENGTH],
                "key_hash": hash_key(key),
                "role": data.role,
                "scopes": held_scopes or [],
                "projects": sorted(set(data.projects)) if data.projects is not None else None,
                "created_at": now,
                "last_used_at": None,
                "expires_at": expires,
                "revoked_at": None,
            }
            connection.execute(insert(keys_table), row)
            record_audit(
                connection,
                actor,
                "key.create",
                row["prefix"],
                tenant_id,
                {
                    "role": data.role,
                    "name": data.name,
                    "projects": row["projects"],
                    "scopes": held_scopes,
                },
            )
        return ApiKeyCreated.model_validate({**row, "tenant": tenant, "key": key})

    def list(
        self,
        *,
        tenant: str | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[ApiKey]:
        """Keys of ``tenant`` within the caller's reach (default: the caller's tenant; the
        operator may say None for all)."""
        page_limit(limit)
        scope = self._store.scope
        _require_key_admin(scope)
        if tenant is None and not scope.server_admin:
            tenant = scope.tenant
        if tenant is not None:
            self._require_tenant(tenant)
        within = (scope.tenant, tenant, _reach_digest(scope))
        after = _key_pages.decode(cursor, within)[0] if cursor else None
        query = (
            select(*keys_table.c, t.slug.label("tenant"))
            .join(tenants_table, t.id == k.tenant_id)
            .order_by(k.key_id)
        )
        if tenant is not None:
            query = query.where(t.slug == tenant)
        if after is not None:
            query = query.where(k.key_id > after)
        with self._db.connect() as connection:
            rows = _rows_within_reach(
                connection,
                query,
                limit + 1,
                lambda row: key_within_reach(scope, row.projects, row.scopes),
                lambda q, last: q.where(k.key_id > last.key_id),
                limited=scope.projects is not None or scope.scopes is not None,
            )
        items = [ApiKey.model_validate(r._mapping) for r in rows]
        return _key_pages.page(items, limit, lambda item: [item.key_id], within)

    def revoke(self, key_id: uuid.UUID | str, *, actor: str = "library") -> ApiKey:
        """Revoke a key within the caller's reach: it stops working at once, on every
        server process."""
        scope = self._store.scope
        _require_key_admin(scope)
        key_id = as_uuid(key_id, "key")
        with self._db.connect(write=True) as connection:
            row = connection.execute(
                select(*keys_table.c, t.slug.label("tenant"))
                .join(tenants_table, t.id == k.tenant_id)
                .where(k.key_id == key_id)
            ).first()
            visible = row is not None and (scope.server_admin or row.tenant == scope.tenant)
            if row is None or not visible or not key_within_reach(scope, row.projects, row.scopes):
                raise NotFoundError(f"No key {key_id}")  # another's key is not found either
            now = utcnow()
            connection.execute(
                update(keys_table)
                .where(k.key_id == key_id, k.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            bump_key_generation(connection)
            record_audit(
                connection,
                actor,
                "key.revoke",
                row.prefix,
                row.tenant_id,
                {"role": row.role, "projects": row.projects, "scopes": row.scopes or None},
            )
        return ApiKey.model_validate({**row._mapping, "revoked_at": row.revoked_at or now})

    def count(self) -> int:
        """Keys that work now, in every tenant (0 on a fresh server)."""
        now = utcnow()
        with self._db.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(keys_table)
                    .where(k.revoked_at.is_(None), (k.expires_at.is_(None)) | (k.expires_at > now))
                ).scalar_one()
            )

    def authenticate(self, key: str) -> Principal | None:
        """The principal of a working key, or None; takes the same time for any wrong key."""
        prefix = key[:_PREFIX_LENGTH] if key.startswith(KEY_PREFIX) else ""
        digest = hash_key(key)
        with self._db.read() as connection:
            rows = connection.execute(
                select(
                    k.key_id,
                    k.key_hash,
                    k.role,
                    k.projects,
                    k.scopes,
                    k.prefix,
                    k.expires_at,
                    k.revoked_at,
                    t.id.label("tenant_id"),
                    t.slug.label("tenant"),
                    t.quotas,
                    t.is_active,
                )
                .join(tenants_table, t.id == k.tenant_id)
                .where(k.prefix == prefix)
            ).all()
        match = None
        if not rows:  # compare anyway: a wrong prefix costs what a wrong key costs
            hmac.compare_digest(digest, _DUMMY_HASH)
        for row in rows:
            if hmac.compare_digest(digest, row.key_hash):
                match = row
        if match is None or not match.is_active or match.revoked_at is not None:
            return None
        if match.expires_at is not None and match.expires_at <= utcnow():
            return None
        return Principal(
            key_id=match.key_id,
            tenant=match.tenant,
            tenant_id=match.tenant_id,
            role=match.role,
            projects=frozenset(match.projects) if match.projects is not None else None,
            prefix=match.prefix,
            quotas=Quotas.model_validate(match.quotas or {}),
            expires_at=match.expires_at,
            scopes=frozenset(match.scopes) if match.scopes else None,
        )

    def touch(self, key_id: uuid.UUID, when: datetime) -> None:
        with self._db.connect(write=True) as connection:
            connection.execute(
                update(keys_table).where(k.key_id == key_id).values(last_used_at=when)
            )


class Audit(Domain):
    """``store.audit``: administrative actions, newest first."""

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an administrative action; ``details`` is free JSON about it."""
        with self._db.connect(write=True) as connection:
            tenant_id = None
            if not self._store.scope.server_admin:
                tenant_id = connection.execute(
                    select(t.id).where(t.slug == self._store.scope.tenant)
                ).scalar()
            record_audit(connection, actor, action, target, tenant_id, details or {})

    def list(
        self,
        *,
        action: str | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        """The caller's tenant's entries (a key limited to projects: only those of its
        projects); the operator sees every entry."""
        page_limit(limit)
        scope = self._store.scope
        _require_key_admin(scope)
        a = audit_table.c
        query = select(audit_table).order_by(a.id.desc())
        if not scope.server_admin:
            query = query.join(tenants_table, t.id == a.tenant_id).where(t.slug == scope.tenant)
        if action is not None:
            query = query.where(a.action == action)
        within = (scope.tenant, _reach_digest(scope))
        if cursor:
            (before,) = _audit_pages.decode(cursor, within)
            query = query.where(a.id < before)
        with self._db.connect() as connection:
            rows = _rows_within_reach(
                connection,
                query,
                limit + 1,
                lambda row: within_reach(scope, _entry_projects(row.details)),
                lambda q, last: q.where(a.id < last.id),
                limited=scope.projects is not None,
            )
        items = [AuditEntry.model_validate(r._mapping) for r in rows]
        return _audit_pages.page(items, limit, lambda item: [item.id], within)


# --- what a key may pass on ---------------------------------------------------------------


def within_reach(scope: Scope, projects: Iterable[str] | None) -> bool:
    """Whether a key or entry concerning ``projects`` (None: every project) is within the
    reach of ``scope``: an unlimited caller reaches all, a limited one only what concerns
    some of its own projects."""
    return scope.projects is None or (projects is not None and set(projects) <= scope.projects)


def key_within_reach(
    scope: Scope, projects: Iterable[str] | None, scopes: Iterable[str] | None
) -> bool:
    """Whether a key limited to ``projects`` and ``scopes`` (None or empty: all) is within
    the reach of ``scope``: some of its projects, and scopes it holds itself."""
    return within_reach(scope, projects) and (
        scope.scopes is None or (bool(scopes) and _scopes_held(scope.scopes, scopes or ()))
    )


def _scopes_held(held: Iterable[str], wanted: Iterable[str]) -> bool:
    from ctxbase.api.scopes import covers

    held = list(held)
    return all(any(covers(h, w) for h in held) for w in wanted)


def _check_scopes_held(scope: Scope, scopes: list[str] | None) -> None:
    if scope.scopes is None:
        return
    if scopes is None:
        raise PermissionDeniedError(
            "A key limited to scopes cannot create a key without that limit",
            hint=f"pass scopes among {sorted(scope.scopes)}",
        )
    from ctxbase.api.scopes import covers

    for wanted in scopes:
        if not any(covers(held, wanted) for held in scope.scopes):
            raise PermissionDeniedError(
                f"This key does not hold scope {wanted!r}, so it cannot give it",
                details={"scope": wanted},
                hint=f"pass scopes among {sorted(scope.scopes)}",
            )


def _require_key_admin(scope: Scope) -> None:
    if scope.role != "admin":
        raise PermissionDeniedError(f"Managing keys needs an admin key; this is a {scope.role}")


def _check_role_held(scope: Scope, role: str) -> None:
    if _ROLE_RANK[role] > _ROLE_RANK.get(scope.role, -1):
        raise PermissionDeniedError(f"A {scope.role} key cannot create a {role} key")


def _check_expiry_held(scope: Scope, expires: datetime | None) -> None:
    if scope.expires_at is None:
        return
    if expires is None or expires > scope.expires_at:
        raise PermissionDeniedError(
            "This key expires, so the keys it creates must expire no later than it does",
            details={"expires_at": scope.expires_at.isoformat()},
            hint="pass expires_in_days ending before this key's expiry",
        )


def _check_projects_held(
    connection: Connection,
    scope: Scope,
    tenant: str,
    tenant_id: uuid.UUID,
    projects: list[str] | None,
) -> None:
    """Projects the caller cannot see are refused exactly as projects that do not exist."""
    if projects is None:
        if scope.projects is not None:
            raise PermissionDeniedError(
                "A key limited to projects cannot create a key without that limit",
                hint=f"pass projects among {sorted(scope.projects)}",
            )
        return
    known = set(
        connection.execute(
            select(projects_table.c.slug).where(
                projects_table.c.tenant_id == tenant_id,
                projects_table.c.slug.in_(projects),
            )
        ).scalars()
    )
    if scope.projects is not None:
        known &= scope.projects
    if unknown := sorted(set(projects) - known):
        raise NotFoundError(f"No project {unknown[0]!r} in tenant {tenant!r}")


def _entry_projects(details: Any) -> list[str] | None:
    """The projects an audit entry concerns: those of the key it created or revoked; None
    (tenant-wide) for every other entry."""
    projects = details.get("projects") if isinstance(details, dict) else None
    return projects if isinstance(projects, list) else None


def _reach_digest(scope: Scope) -> str:
    """Lists differ by reach, so a cursor is valid only for the same reach."""
    projects = "*" if scope.projects is None else ",".join(sorted(scope.projects))
    if scope.scopes is None:
        return projects
    return f"{projects};{','.join(sorted(scope.scopes))}"


def _rows_within_reach(
    connection: Connection,
    query: Select[Any],
    wanted: int,
    visible: Callable[[Any], bool],
    after: Callable[[Select[Any], Any], Select[Any]],
    *,
    limited: bool,
) -> list[Any]:
    """Up to ``wanted`` rows of ``query`` (ordered) that are ``visible``. Reach is a
    subset test over JSON lists, so a ``limited`` caller's rows are filtered here, read
    in batches; an unlimited caller's are all visible and read in one."""
    size = max(wanted, _SCAN_BATCH) if limited else wanted
    found: list[Any] = []
    batch = query.limit(size)
    while True:
        rows = connection.execute(batch).all()
        found += [row for row in rows if visible(row)]
        if len(found) >= wanted or len(rows) < size:
            return found[:wanted]
        batch = after(query, rows[-1]).limit(size)


def record_audit(
    connection: Connection,
    actor: str,
    action: str,
    target: str | None,
    tenant_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    """Append an audit entry in the caller's transaction (it stands or falls with it)."""
    connection.execute(
        insert(audit_table).values(
            id=new_id(),
            tenant_id=tenant_id,
            actor=actor[:200],
            action=action,
            target=target[:500] if target else None,
            details=details,
            created_at=utcnow(),
        )
    )
