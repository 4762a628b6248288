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
