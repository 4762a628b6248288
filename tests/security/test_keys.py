"""API keys: stored as hashes only, compared in constant time, rate limited, guessing
locked out; quotas; the development mode; the first admin key; key rotation of secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

import ctxbase
from ctxbase.config import Settings
from ctxbase.errors import ConfigurationError, PermissionDeniedError
from ctxbase.server import create_app
from ctxbase.store.base import Scope
from ctxbase.store.tenancy import hash_key

API = "/api/v1"


def _client(store: ctxbase.Store, **settings: object) -> TestClient:
    values = {"auth": "required", **settings}
    return TestClient(create_app(store=store, settings=store.settings.model_copy(update=values)))


def _all_stored_text(store: ctxbase.Store) -> str:
    """Every value of every table, as text: what someone with the database would see."""
    metadata = MetaData()
    metadata.reflect(store.db.engine)
    parts = []
    with store.db.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_keys_are_stored_as_hashes_only(store: ctxbase.Store) -> None:
    created = store.keys.create(role="writer", name="ci")
    stored = _all_stored_text(store)
    assert created.key not in stored
    assert created.key[12:] not in stored  # not even the secret part
    assert hashlib.sha256(created.key.encode()).hexdigest() in stored
    assert created.prefix in stored and len(created.prefix) == 12
    listed = store.keys.list().items
    assert created.key not in json.dumps([k.model_dump(mode="json") for k in listed])


def test_key_checks_compare_in_constant_time(
    store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong key costs one constant-time comparison of full-length hashes, whatever its
    prefix: nothing returns early on the first differing character."""
    created = store.keys.create(role="reader")
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("ctxbase.store.tenancy.hmac.compare_digest", spy)
    almost = created.key[:-1] + ("A" if created.key[-1] != "A" else "B")
    for guess in (almost, created.prefix + "_" + "x" * 40, "cbk_unknown_" + "y" * 40, "junk"):
        calls.clear()
        assert store.keys.authenticate(guess) is None
        assert calls == [(64, 64)], guess
    calls.clear()
    assert store.keys.authenticate(created.key) is not None
    assert calls == [(64, 64)]


def test_a_thousand_wrong_keys_are_locked_out(store: ctxbase.Store) -> None:
    right = store.keys.create(role="admin").key
    statuses = []
    with _client(store) as client:
        for n in range(1000):
            wrong = f"cbk_{n:08d}_{'z' * 40}"
            response = client.get(f"{API}/projects", headers={"Authorization": f"Bearer {wrong}"})
            statuses.append(response.status_code)
        assert set(statuses[:20]) == {401}
        assert set(statuses[20:]) == {429}
        refused = client.get(f"{API}/projects", headers={"Authorization": f"Bearer {right}"})
        assert refused.status_code == 429  # locked out: even the right key, for the minute
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    with _client(store) as fresh:  # another server process knows nothing of it
        assert fresh.get(f"{API}/projects", headers={"Authorization": f"Bearer {right}"}).is_success


def test_requests_per_key_are_rate_limited(store: ctxbase.Store) -> None:
    store.tenants.create("small", quotas={"requests_per_minute": 5})
    small = store.keys.create(tenant="small", role="reader").key
    big = store.keys.create(role="reader").key
    with _client(store, rate_limit_per_minute=1000) as client:
        answers = [
            client.get(f"{API}/projects", headers={"Authorization": f"Bearer {small}"})
            for _ in range(8)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert client.get(f"{API}/projects", headers={"Authorization": f"Bearer {big}"}).is_success


def test_quotas_refuse_writes_with_a_clear_message(store: ctxbase.Store) -> None:
    store.tenants.create("tiny", quotas={"projects": 1, "items": 2})
    key = store.keys.create(tenant="tiny", role="admin").key
    auth = {"Authorization": f"Bearer {key}"}
    with _client(store) as client:
        assert client.post(f"{API}/projects", json={"slug": "one"}, headers=auth).status_code == 201
        client.app.state.usage.forget()
        second = client.post(f"{API}/projects", json={"slug": "two"}, headers=auth)
        assert second.status_code == 403
        assert second.json()["error"]["code"] == "quota_exceeded"
        assert "1 projects" in second.json()["error"]["message"]
        for text in ("a", "b"):
            added = client.post(
                f"{API}/projects/one/memories", json={"content": text}, headers=auth
            )
            assert added.status_code == 201
        client.app.state.usage.forget()
        over = client.post(f"{API}/projects/one/memories", json={"content": "c"}, headers=auth)
        assert over.status_code == 403 and over.json()["error"]["details"]["quota"] == "items"
        assert client.get(f"{API}/projects/one/memories", headers=auth).status_code == 200


def test_expired_and_revoked_keys_stop(store: ctxbase.Store) -> None:
    revoked = store.keys.create(role="reader")
    with _client(store) as client:
        auth = {"Authorization": f"Bearer {revoked.key}"}
        assert client.get(f"{API}/projects", headers=auth).status_code == 200
        store.keys.revoke(revoked.key_id)
        assert client.get(f"{API}/projects", headers=auth).status_code == 401
    assert store.keys.list().items[0].revoked_at is not None
    assert store.keys.list().items[0].last_used_at is not None


def test_tenant_admins_manage_only_their_tenant(store: ctxbase.Store) -> None:
    store.tenants.create("acme")
    acme = store.scoped(Scope(tenant="acme", server_admin=False))
    own = acme.keys.create(role="reader")
    assert own.tenant == "acme"
    with pytest.raises(ctxbase.NotFoundError):
        acme.keys.create(tenant="default", role="admin")
    with pytest.raises(PermissionDeniedError):
        acme.tenants.create("evil")
    with pytest.raises(PermissionDeniedError):
        store.tenants.update("default", is_active=False)


def test_auth_can_be_disabled_only_on_loopback(store: ctxbase.Store) -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        create_app(store=store, settings=Settings.from_values(auth="disabled", host=host))
    with pytest.raises(ConfigurationError, match="loopback"):
        create_app(store=store, settings=Settings.from_values(auth="disabled", host="0.0.0.0"))


def test_secret_rotation_with_a_key_file(tmp_path: Path, database_url: str) -> None:
    from tests.conftest import open_store

    key_file = tmp_path / "secret.key"
    with open_store(database_url, secret_key=None, secret_key_file=str(key_file)) as store:
        sub = store.subscriptions.create(
            agent_id="a", delivery="webhook", target="http://127.0.0.1:9/", secret="s" * 20
        )
        old_key = key_file.read_text()
        from ctxbase.store.rotation import rotate_secrets

        assert rotate_secrets(store) == 1
        new_key = key_file.read_text()
        assert new_key != old_key and "," not in new_key
        with store.db.connect() as connection:
            from ctxbase.store.subscriptions import sub as columns
            from ctxbase.store.subscriptions import subscriptions_table

            token = connection.execute(
                select(columns.secret_encrypted).where(subscriptions_table.c.id == sub.id)
            ).scalar_one()
        assert store.secrets.decrypt(token) == "s" * 20


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CTXBASE_DATABASE_URL", url)
    yield url


def test_cli_prints_a_new_key_once_alone_on_its_last_line(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ctxbase.cli import app, common

    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "--role", "writer", "--name", "bot", "--expires", "30d"]
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("cbk_") and " " not in key
    # The CLI's console took its width when first imported, whichever test did that.
    monkeypatch.setattr(common.out, "width", 250)
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0 and key not in listed.output and key[:12] in listed.output
    with ctxbase.open(cli_env, embedder="none") as store:
        principal = store.keys.authenticate(key)
        assert principal is not None and principal.role == "writer"
        assert store.keys.list().items[0].expires_at is not None
        assert hash_key(key) not in listed.output
    bad = runner.invoke(app, ["keys", "create", "--role", "root"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    bad = runner.invoke(app, ["keys", "create", "--expires", "soon"])
    assert bad.exit_code != 0


def test_serve_makes_the_first_admin_key_once(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctxbase.cli import _first_admin_key

    settings = Settings.from_values(database_url=cli_env, embedder="none")
    _first_admin_key(settings)
    first = capsys.readouterr().out.strip().splitlines()
    assert "shown only now" in " ".join(first)
    key = first[-1]
    _first_admin_key(settings)
    assert capsys.readouterr().out == ""  # a key exists: nothing more is printed
    with ctxbase.open(cli_env, embedder="none") as store:
        principal = store.keys.authenticate(key)
        assert principal is not None and principal.server_admin


def test_server_administration_is_audited(store: ctxbase.Store, tmp_path: Path) -> None:
    key = store.keys.create(role="admin")
    auth = {"Authorization": f"Bearer {key.key}"}
    with _client(store) as client:
        made = client.post(
            f"{API}/database-configs",
            json={"name": "laptop", "kind": "sqlite", "sqlite_path": str(tmp_path / "l.db")},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        entries = client.get(f"{API}/audit?action=database_config.add", headers=auth).json()
    [entry] = entries["items"]
    assert (entry["actor"], entry["target"], entry["tenant_id"]) == (
        f"key:{key.prefix}",
        "laptop",
        None,
    )
