"""Tenants, keys and the audit log through the library and the client alike."""

from __future__ import annotations

from typing import Any

import pytest

import ctxbase
from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError


def test_tenants_keys_and_audit(api: Any) -> None:
    tenant = api.tenants.create("acme", name="Acme", quotas={"projects": 3})
    assert (tenant.slug, tenant.name, tenant.quotas.projects, tenant.is_active) == (
        "acme",
        "Acme",
        3,
        True,
    )
    with pytest.raises(ConflictError):
        api.tenants.create("acme")
    with pytest.raises(InvalidInputError):
        api.tenants.create("Not A Slug")
    assert "acme" in {t.slug for t in api.tenants.list().items}
    created = api.keys.create(tenant="acme", role="reader", name="bot")
    assert created.key.startswith("cbk_") and created.prefix == created.key[:12]
    listed = {k.key_id: k for k in api.keys.list(tenant="acme").items}
    assert created.key_id in listed and not hasattr(listed[created.key_id], "key")
    revoked = api.keys.revoke(created.key_id)  # the library returns it; HTTP answers 204
    assert revoked is None if isinstance(api, ctxbase.Client) else revoked.revoked_at
    listed = {k.key_id: k for k in api.keys.list(tenant="acme").items}
    assert listed[created.key_id].revoked_at is not None
    with pytest.raises(NotFoundError):
        api.keys.create(tenant="nobody", role="reader")
    with pytest.raises(InvalidInputError):
        api.keys.create(role="superuser")
    updated = api.tenants.update("acme", plan="pro", is_active=False)
    assert (updated.plan, updated.is_active) == ("pro", False)
    actions = [e.action for e in api.audit.list().items]
    assert {"tenant.create", "key.create", "key.revoke", "tenant.deactivate"} <= set(actions)
    assert [e.action for e in api.audit.list(action="key.revoke").items] == ["key.revoke"]


def test_tenants_keep_settings_and_quota_keys_of_their_own(api: Any) -> None:
    quotas = {"projects": 5, "agents": 25, "embedding.calls": 1000, "tiers": {"gold": True}}
    made = api.tenants.create("acme", quotas=quotas, settings={"region": "eu", "theme": [1, 2]})
    assert made.quotas.projects == 5 and made.settings == {"region": "eu", "theme": [1, 2]}
    kept = api.tenants.get("acme")
    assert kept.quotas.model_dump(exclude_none=True) == quotas
    assert kept.settings == made.settings
    changed = api.tenants.update("acme", settings={"region": "us"}, quotas={"agents": 50})
    assert changed.settings == {"region": "us"}  # each given one is replaced whole
    assert changed.quotas.model_dump(exclude_none=True) == {"agents": 50}
    assert api.tenants.update("acme", plan="pro").settings == {"region": "us"}
    for bad in (
        {"quotas": {"projects": "ten"}},  # enforced quotas are still validated
        {"quotas": {"requests_per_minute": 0}},
        {"quotas": {"1st": 3}},  # own keys start with a letter
        {"settings": ["not", "an", "object"]},
        {"settings": {"x": float("nan")}},
    ):
        with pytest.raises(InvalidInputError):
            api.tenants.create("globex", **bad)
        with pytest.raises(InvalidInputError):
            api.tenants.update("acme", **bad)
    with pytest.raises(InvalidInputError) as unknown:
        api.tenants.create("globex", colour="blue")  # unknown top-level fields: refused
    assert "colour" in str(unknown.value)
    assert api.tenants.get("acme").settings == {"region": "us"}
    assert "globex" not in {t.slug for t in api.tenants.list().items}


def test_keys_carry_scopes(api: Any) -> None:
    scoped = api.keys.create(role="writer", scopes=["memories:*", "search:read", "search:read"])
    assert scoped.scopes == ["memories:*", "search:read"]
    unscoped = api.keys.create(role="reader")
    assert unscoped.scopes is None and api.keys.create(role="reader", scopes=[]).scopes is None
    listed = {k.key_id: k.scopes for k in api.keys.list().items}
    assert listed[scoped.key_id] == ["memories:*", "search:read"]
    assert listed[unscoped.key_id] is None
    with pytest.raises(InvalidInputError) as unknown:
        api.keys.create(role="reader", scopes=["memories:read", "memory:read"])
    assert "memory:read" in str(unknown.value)
