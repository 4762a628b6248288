"""A key passes on only the rights it holds, through the library and REST alike.

Callers are keys of one tenant limited by role (admin, writer, reader), by projects
(unlimited, ``pa``, ``pa`` + ``pb``) and by expiry (none, 30 days). Each creates keys of
every role, project limit and expiry, revokes keys of every reach, lists keys and reads
the audit log; every answer is compared with the rule written out below, cell by cell.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.errors import CtxbaseError
from ctxbase.server import create_app
from ctxbase.server.access import scope_of
from ctxbase.store.base import Scope

API = "/api/v1"
TENANT = "acme"
ROLES = ("admin", "writer", "reader")
RANK = {"reader": 0, "writer": 1, "admin": 2}
PROJECT_LIMITS: tuple[frozenset[str] | None, ...] = (
    None,
    frozenset({"pa"}),
    frozenset({"pa", "pb"}),
)
REQUESTED_PROJECTS: tuple[list[str] | None, ...] = (None, ["pa"], ["pa", "pb"], ["pb"])
CALLER_DAYS = (None, 30)
REQUESTED_DAYS = (None, 10, 60)


@dataclass(frozen=True)
class Caller:
    role: str
    projects: frozenset[str] | None
    days: int | None

    def __str__(self) -> str:
        limit = "all" if self.projects is None else "+".join(sorted(self.projects))
        return f"{self.role}/{limit}/{self.days or 'forever'}"


CALLERS = [Caller(*c) for c in itertools.product(ROLES, PROJECT_LIMITS, CALLER_DAYS)]


# --- the rule, written out ----------------------------------------------------------------


def reaches(caller: Caller, projects: list[str] | None) -> bool:
    """An unlimited caller reaches every key; a limited one the keys limited to some of its
    projects, never a broader one."""
    if caller.projects is None:
        return True
    return projects is not None and set(projects) <= caller.projects


def expected_create(caller: Caller, role: str, projects: list[str] | None, days: int | None) -> int:
    if caller.role != "admin" or RANK[role] > RANK[caller.role]:
        return 403
    if caller.days is not None and (days is None or days > caller.days):
        return 403
    if caller.projects is not None and projects is None:
        return 403
    if not reaches(caller, projects):
        return 404  # a project out of reach is not found, like one that does not exist
    return 201


# --- the two interfaces -------------------------------------------------------------------


class Interface:
    """One caller's key used through the library or over REST: statuses and ids."""

    def __init__(self, store: ctxbase.Store, client: TestClient | None) -> None:
        self.store, self.client = store, client

    def create(self, key: str, body: dict[str, Any]) -> int:
        if self.client is None:
            return _status(lambda: self._view(key).keys.create(**body))
        return self.client.post(f"{API}/keys", json=body, headers=_auth(key)).status_code

    def revoke(self, key: str, key_id: str) -> int:
        if self.client is None:
            return _status(lambda: self._view(key).keys.revoke(key_id))
        return self.client.delete(f"{API}/keys/{key_id}", headers=_auth(key)).status_code

    def listed(self, key: str, what: str) -> tuple[int, set[str]]:
        """Every page of the keys (``keys``) or audit entries (``audit``) the key sees."""
        found: set[str] = set()
        cursor = None
        while True:
            if self.client is None:
                domain = self._view(key).keys if what == "keys" else self._view(key).audit
                try:
                    page = domain.list(limit=3, cursor=cursor)
                except CtxbaseError as error:
                    return error.http_status, found
                items, cursor = [i.model_dump(mode="json") for i in page.items], page.next_cursor
            else:
                params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
                answer = self.client.get(f"{API}/{what}", params=params, headers=_auth(key))
                if answer.status_code != 200:
                    return answer.status_code, found
                items, cursor = answer.json()["items"], answer.json()["next_cursor"]
            found |= {str(i["key_id"] if what == "keys" else i["id"]) for i in items}
            if cursor is None:
                return 200, found

    def _view(self, key: str) -> ctxbase.Store:
        """The library view a server builds for this key."""
        principal = self.store.keys.authenticate(key)
        assert principal is not None
        return self.store.scoped(scope_of(principal))


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except CtxbaseError as error:
        return error.http_status
    return 0  # success: the caller maps it to the REST status


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(params=["library", "rest"])
def interface(request: pytest.FixtureRequest, store: ctxbase.Store) -> Iterator[Interface]:
    store.tenants.create(TENANT)
    store.tenants.create("other")
    acme = store.scoped(Scope(tenant=TENANT, server_admin=False))
    for slug in ("pa", "pb", "pc"):
        acme.projects.create(slug)
    if request.param == "library":
        yield Interface(store, None)
        return
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    with TestClient(create_app(store=store, settings=settings)) as client:
        yield Interface(store, client)


def _key(store: ctxbase.Store, caller: Caller, tenant: str = TENANT) -> ctxbase.records.ApiKey:
    projects = sorted(caller.projects) if caller.projects is not None else None
    return store.keys.create(
        tenant=tenant, role=caller.role, projects=projects, expires_in_days=caller.days
    )


def _success(interface: Interface, status: int, created: int) -> int:
    return created if status == 0 and interface.client is None else status


# --- the matrix ---------------------------------------------------------------------------


def test_keys_create_only_keys_with_rights_they_hold(
    interface: Interface, store: ctxbase.Store
) -> None:
    wrong = []
    cells = 0
    for caller in CALLERS:
        key = _key(store, caller).key
        for role, projects, days in itertools.product(ROLES, REQUESTED_PROJECTS, REQUESTED_DAYS):
            body = {"role": role, "projects": projects, "expires_in_days": days}
            got = _success(interface, interface.create(key, body), 201)
            want = expected_create(caller, role, projects, days)
            cells += 1
            if got != want:
                wrong.append(f"{caller} creating {body}: {got}, expected {want}")
    assert cells == 18 * 36
    assert not wrong, "\n".join(wrong)


def test_keys_revoke_only_keys_within_their_reach(
    interface: Interface, store: ctxbase.Store
) -> None:
    targets = [
        Caller("admin", None, None),  # the tenant's unrestricted admin key
        Caller("reader", frozenset({"pa"}), None),
        Caller("writer", frozenset({"pb"}), None),
        Caller("admin", frozenset({"pa", "pb"}), None),
        Caller("reader", frozenset({"pa", "pc"}), 5),
    ]
    wrong = []
    for caller in CALLERS:
        key = _key(store, caller).key
        for target in targets:
            victim = _key(store, target)
            got = _success(interface, interface.revoke(key, str(victim.key_id)), 204)
            want = 403 if caller.role != "admin" else 204 if reaches_key(caller, target) else 404
            if got != want:
                wrong.append(f"{caller} revoking {target}: {got}, expected {want}")
            still_works = store.keys.authenticate(victim.key) is not None
            if still_works != (want != 204):
                wrong.append(f"{caller} revoking {target}: key still works: {still_works}")
        foreign = _key(store, Caller("reader", None, None), tenant="other")
        got = _success(interface, interface.revoke(key, str(foreign.key_id)), 204)
        if got != (403 if caller.role != "admin" else 404):
            wrong.append(f"{caller} revoking another tenant's key: {got}")
    assert not wrong, "\n".join(wrong)


def reaches_key(caller: Caller, target: Caller) -> bool:
    return reaches(caller, sorted(target.projects) if target.projects is not None else None)


def test_keys_list_and_audit_show_only_what_is_within_reach(
    interface: Interface, store: ctxbase.Store
) -> None:
    keys = {caller: _key(store, caller) for caller in CALLERS}
    _key(store, Caller("admin", None, None), tenant="other")
    store.keys.revoke(_key(store, Caller("reader", frozenset({"pb"}), None)).key_id)
    tenant_keys = store.keys.list(tenant=TENANT, limit=1000).items
    acme_id = store.tenants.get(TENANT).id
    entries = [e for e in store.audit.list(limit=1000).items if e.tenant_id == acme_id]
    assert {e.action for e in entries} == {"tenant.create", "key.create", "key.revoke"}
    wrong = []
    for caller, created in keys.items():
        want_keys = {str(k.key_id) for k in tenant_keys if reaches(caller, k.projects)}
        want_audit = {
            str(e.id)
            for e in entries
            if reaches(caller, e.details.get("projects") if e.action != "tenant.create" else None)
        }
        for what, want in (("keys", want_keys), ("audit", want_audit)):
            status, seen = interface.listed(created.key, what)
            if caller.role != "admin":
                if status != 403 or seen:
                    wrong.append(f"{caller} listing {what}: {status} {len(seen)}")
            elif status != 200 or seen != want:
                wrong.append(f"{caller} listing {what}: {status}, {len(seen)} of {len(want)}")
    assert not wrong, "\n".join(wrong)
    # Control: the limited views really are smaller than the tenant's.
    assert len(want_keys) < len(tenant_keys) and len(want_audit) < len(entries)


def test_a_project_limited_admin_cannot_escalate(
    interface: Interface, store: ctxbase.Store
) -> None:
    """The attack in full: an admin key limited to ``pa`` tries for everything else."""
    unrestricted = _key(store, Caller("admin", None, None))
    limited = _key(store, Caller("admin", frozenset({"pa"}), None)).key
    attempts = {
        "an unlimited admin": {"role": "admin"},
        "an admin of pb": {"role": "admin", "projects": ["pb"]},
        "an admin of pa and pb": {"role": "admin", "projects": ["pa", "pb"]},
    }
    for what, body in attempts.items():
        assert interface.create(limited, body) in (403, 404), what
    assert interface.revoke(limited, str(unrestricted.key_id)) == 404
    assert store.keys.authenticate(unrestricted.key) is not None
    status, seen = interface.listed(limited, "keys")
    assert status == 200 and str(unrestricted.key_id) not in seen
    # What it may do: a reader of its own project.
    assert (
        _success(interface, interface.create(limited, {"role": "reader", "projects": ["pa"]}), 201)
        == 201
    )


def test_a_project_limited_key_of_the_operator_does_not_run_the_server(
    interface: Interface, store: ctxbase.Store
) -> None:
    store.projects.create("pa")
    limited = _key(store, Caller("admin", frozenset({"pa"}), None), tenant="default").key
    assert interface.create(limited, {"role": "admin", "tenant": TENANT}) == 404
    if interface.client is not None:
        answer = interface.client.get(f"{API}/tenants", headers=_auth(limited))
        assert answer.status_code == 403
    else:
        view = interface._view(limited)
        assert not view.scope.server_admin
        with pytest.raises(ctxbase.errors.PermissionDeniedError):
            view.tenants.list()
