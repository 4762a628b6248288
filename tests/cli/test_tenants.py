"""``ctxbase tenants create`` and ``tenants update`` with settings and quotas of the
tenant's own, on SQLite and PostgreSQL; bad input is a message and exit 1, never a
traceback, and changes nothing."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from ctxbase.cli import app
from ctxbase.errors import CtxbaseError
from tests.conftest import open_store

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def refused(*args: str) -> str:
    """The message of the error that refuses ``args`` (exit 1), as ``ctxbase`` prints it."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1 and isinstance(result.exception, CtxbaseError), (
        args,
        result.output,
    )
    return result.exception.message


def refused_by_a_process(*args: str) -> str:
    """What a real process prints on stderr when it refuses ``args`` (exit 1)."""
    process = subprocess.run(
        [sys.executable, "-m", "ctxbase", *args], capture_output=True, text=True, timeout=120
    )
    said = " ".join(process.stderr.split())
    assert process.returncode == 1, (args, process.stdout, said)
    assert "Traceback" not in process.stderr and process.stdout == "", said
    return said


def test_create_and_update_with_settings_and_quotas(persistent_database_url: str) -> None:
    url = persistent_database_url
    output = ok(
        "tenants", "create", "acme", "-d", url, "--name", "Acme", "--max-projects", "3",
        "--quota", "agents=25", "--quota", "tier=gold", "--quota", "beta=true",
        "--settings", '{"region": "eu", "limits": {"depth": 2}}',
    )  # fmt: skip
    assert "Created tenant acme" in output
    with open_store(url) as store:
        tenant = store.tenants.get("acme")
        assert tenant.name == "Acme"
        assert tenant.quotas.model_dump(exclude_none=True) == {
            "projects": 3,
            "agents": 25,
            "tier": "gold",
            "beta": True,
        }
        assert tenant.settings == {"region": "eu", "limits": {"depth": 2}}

    output = ok(
        "tenants", "update", "acme", "-d", url, "--plan", "team",
        "--quota", "agents=30", "--quota", "projects=5",
    )  # fmt: skip
    assert "Updated tenant acme: plan, quotas (projects=5, agents=30)" in output
    with open_store(url) as store:
        tenant = store.tenants.get("acme")
        assert (tenant.name, tenant.plan) == ("Acme", "team")  # the name stays
        assert tenant.quotas.model_dump(exclude_none=True) == {"projects": 5, "agents": 30}
        assert tenant.settings == {"region": "eu", "limits": {"depth": 2}}  # as it was

    ok("tenants", "update", "-d", url, "acme", "--settings", '{"region": "us"}', "--name", "A")
    ok("tenants", "update", "-d", url, "acme", "--max-items", "100")
    with open_store(url) as store:
        tenant = store.tenants.get("acme")
        assert (tenant.name, tenant.settings) == ("A", {"region": "us"})
        assert tenant.quotas.model_dump(exclude_none=True) == {"items": 100}
        actions = [entry.action for entry in store.audit.list().items]
        assert actions.count("tenant.update") == 3 and "tenant.create" in actions
    assert "items=100" in ok("tenants", "list", "-d", url)


def test_bad_input_is_a_message_and_changes_nothing(persistent_database_url: str) -> None:
    url = persistent_database_url
    ok("tenants", "create", "acme", "-d", url, "--settings", '{"region": "eu"}')
    for args, message in [
        (["create", "b", "--settings", "{region: eu}"], "--settings is not JSON"),
        (["create", "b", "--settings", "[1, 2]"], "--settings must be a JSON object, not list"),
        (["create", "b", "--quota", "agents"], "--quota takes KEY=VALUE, not 'agents'"),
        (["create", "b", "--quota", "=3"], "--quota takes KEY=VALUE, not '=3'"),
        (["create", "b", "--quota", "projects=many"], "quotas.projects: Input should be a valid"),
        (["create", "b", "--quota", "9lives=1"], "quota key '9lives' must be a letter"),
        (["create", "b", "--max-projects", "2", "--quota", "projects=3"], "given twice"),
        (["update", "nobody", "--name", "N"], "No tenant 'nobody'"),
        (["update", "acme"], "Nothing to change"),
        (["update", "acme", "--settings", '"eu"'], "must be a JSON object, not str"),
        (["update", "acme", "--quota", "items=-1"], "quotas.items: Input should be greater"),
    ]:
        said = refused("tenants", *args, "-d", url)
        assert message in said, (args, said)
    for args, message in [  # as a person sees it: a message and a hint, no traceback
        (["create", "b", "--settings", "[1]"], "Error: --settings must be a JSON object"),
        (["update", "nobody", "--name", "N"], "Error: No tenant 'nobody'"),
    ]:
        said = refused_by_a_process("tenants", *args, "-d", url)
        assert said.startswith(message), said
    assert "hint: e.g. --settings" in refused_by_a_process(
        "tenants", "update", "acme", "--settings", "{", "-d", url
    )
    with open_store(url) as store:
        assert [t.slug for t in store.tenants.list().items] == ["acme", "default"]
        tenant = store.tenants.get("acme")
        assert (
            tenant.settings == {"region": "eu"}
            and tenant.quotas.model_dump(exclude_none=True) == {}
        )
