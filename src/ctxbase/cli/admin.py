"""``ctxbase keys``, ``ctxbase tenants`` and ``ctxbase secrets``: administration commands.

A new key is printed once, alone on the last line of the output (so scripts can take it
with ``tail -n1``), and never again: only its hash is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer
from rich.table import Table

from ctxbase.cli.common import open_store, out
from ctxbase.errors import InvalidInputError

if TYPE_CHECKING:  # the store loads with the first command that needs it
    from ctxbase.records import Page, Role

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants: create, list, update, deactivate.", no_args_is_help=True)
secrets_app = typer.Typer(help="The key that encrypts stored secrets.", no_args_is_help=True)

CLI_ACTOR = "cli"
T = TypeVar("T")


def _every(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paginated list, page after page."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def parse_days(text: str) -> int:
    """``30d``, ``12w``, ``1y`` or a number of days."""
    match = re.fullmatch(r"\s*(\d+)\s*([dwy]?)\s*", text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInputError(f"Not a duration: {text!r}", hint="use e.g. 30d, 12w or 1y")
    return int(match.group(1)) * {"": 1, "d": 1, "w": 7, "y": 365}[match.group(2)]


# --- keys ---------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to.")] = "default",
    role: Annotated[str, typer.Option(help="admin, writer or reader.")] = "reader",
    name: Annotated[str, typer.Option(help="A label to recognise the key.")] = "",
    projects: Annotated[
        str | None, typer.Option(help="Comma-separated: the only projects the key sees.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12w, 1y.")] = None,
    scopes: Annotated[
        str | None,
        typer.Option(help="Comma-separated: the only scopes it holds (memories:read, events:*)."),
    ] = None,
) -> None:
    """Create an API key and print it, once, alone on the last line."""
    store = open_store(ctx)
    created = store.keys.create(
        actor=CLI_ACTOR,
        tenant=tenant,
        role=cast("Role", role),
        name=name,
        projects=[p.strip() for p in projects.split(",") if p.strip()] if projects else None,
        expires_in_days=parse_days(expires) if expires else None,
        scopes=[s.strip() for s in scopes.split(",") if s.strip()] if scopes else None,
    )
    out.print(
        f"Created {created.role} key {created.prefix}… for tenant {created.tenant}"
        + (f" (projects: {', '.join(created.projects)})" if created.projects else "")
        + (f" (scopes: {', '.join(created.scopes)})" if created.scopes else "")
        + (f", expires {created.expires_at:%Y-%m-%d}" if created.expires_at else "")
        + ". It is shown only now; store it safely:"
    )
    print(created.key)  # plain print: no wrapping or markup around the key


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List keys (prefix, tenant, role, last use); never the keys themselves."""
    store = open_store(ctx, existing=True)
    table = Table("id", "prefix", "tenant", "role", "name", "projects", "last used", "state")
    for key in _every(lambda cursor: store.keys.list(tenant=tenant, limit=1000, cursor=cursor)):
        table.add_row(
            str(key.key_id),
            key.prefix,
            key.tenant,
            key.role,
            key.name,
            ",".join(key.projects) if key.projects is not None else "all",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            "revoked" if key.revoked_at else "active",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key; it stops working at once."""
    revoked = open_store(ctx).keys.revoke(key_id, actor=CLI_ACTOR)
    out.print(f"Revoked key {revoked.prefix}… of tenant {revoked.tenant}")


# --- tenants ------------------------------------------------------------------------------


NameOption = Annotated[str | None, typer.Option(help="Display name.")]
MaxProjectsOption = Annotated[int | None, typer.Option(help="Quota: projects.")]
MaxItemsOption = Annotated[int | None, typer.Option(help="Quota: stored items.")]
RequestsOption = Annotated[int | None, typer.Option(help="Quota: per key.")]
MaxStorageOption = Annotated[int | None, typer.Option(help="Quota: stored bytes.")]
QuotaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--quota",
        metavar="KEY=VALUE",
        help="A quota, of ctxbase's or of your own (VALUE is JSON, else text); repeatable.",
        show_default=False,
    ),
]
SettingsOption = Annotated[
    str | None,
    typer.Option("--settings", metavar="JSON", help="The tenant's settings: a JSON object."),
]


#: The quotas ctxbase enforces, in the order of their ``--max-…`` options.
ENFORCED_QUOTAS = ("projects", "items", "requests_per_minute", "storage_bytes")


def parse_quotas(pairs: list[str] | None, enforced: list[int | None]) -> dict[str, Any]:
    """The quotas of the ``--max-…`` options (``enforced``, in :data:`ENFORCED_QUOTAS`
    order) and of ``--quota KEY=VALUE`` options: VALUE is read as JSON (``25``, ``true``,
    ``"gold"``), else kept as text. A key given twice is refused; the store checks the
    keys, and the values of the quotas it enforces."""
    given = zip(ENFORCED_QUOTAS, enforced, strict=True)
    quotas: dict[str, Any] = {k: v for k, v in given if v is not None}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(
                f"--quota takes KEY=VALUE, not {pair!r}", hint="e.g. --quota agents=25"
            )
        if key in quotas:
            raise InvalidInputError(f"Quota {key!r} is given twice")
        try:
            quotas[key] = json.loads(text)
        except ValueError:
            quotas[key] = text
    return quotas


def parse_settings(text: str | None) -> dict[str, Any] | None:
    """``--settings``: a JSON object, or None when not given."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(
            f"--settings is not JSON: {error}", hint="""e.g. --settings '{"region": "eu"}'"""
        ) from None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"--settings must be a JSON object, not {type(value).__name__} {text.strip()!r}",
            hint="""e.g. --settings '{"region": "eu"}'""",
        )
    return value


@tenants_app.command("create")
def tenants_create(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Lowercase letters, digits, - and _.")],
    name: NameOption = None,
    plan: Annotated[str, typer.Option(help="Plan name.")] = "free",
    max_projects: MaxProjectsOption = None,
    max_items: MaxItemsOption = None,
    requests_per_minute: RequestsOption = None,
    max_storage_bytes: MaxStorageOption = None,
    quota: QuotaOption = None,
    settings: SettingsOption = None,
) -> None:
    """Create a tenant (with its quotas and settings), then give it keys with
    `ctxbase keys create`."""
    quotas = parse_quotas(quota, [max_projects, max_items, requests_per_minute, max_storage_bytes])
    own_settings = parse_settings(settings) or {}
    tenant = open_store(ctx).tenants.create(
        slug, actor=CLI_ACTOR, name=name, plan=plan, quotas=quotas, settings=own_settings
    )
    out.print(f"Created tenant {tenant.slug} (plan {tenant.plan})")


@tenants_app.command("update")
def tenants_update(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant.")],
    name: NameOption = None,
    plan: Annotated[str | None, typer.Option(help="Plan name.")] = None,
    max_projects: MaxProjectsOption = None,
    max_items: MaxItemsOption = None,
    requests_per_minute: RequestsOption = None,
    max_storage_bytes: MaxStorageOption = None,
    quota: QuotaOption = None,
    settings: SettingsOption = None,
) -> None:
    """Change a tenant's name, plan, quotas or settings. Quotas given (--max-… and --quota)
    replace all its quotas, --settings all its settings; what is not given stays."""
    quotas = parse_quotas(quota, [max_projects, max_items, requests_per_minute, max_storage_bytes])
    new_settings = parse_settings(settings)
    changes = {"name": name, "plan": plan, "quotas": quotas or None, "settings": new_settings}
    changed = [k for k, v in changes.items() if v is not None]
    if not changed:
        raise InvalidInputError(
            "Nothing to change",
            hint="give --name, --plan, --max-…, --quota KEY=VALUE or --settings JSON",
        )
    tenant = open_store(ctx).tenants.update(
        slug, actor=CLI_ACTOR, name=name, plan=plan, quotas=quotas or None, settings=new_settings
    )
    if quotas:  # replaced whole: show what the tenant has now
        now = tenant.quotas.model_dump(exclude_none=True)
        changed[changed.index("quotas")] = f"quotas ({_quota_list(now)})"
    out.print(f"Updated tenant {tenant.slug}: {', '.join(changed)}", highlight=False)


@tenants_app.command("list")
def tenants_list(ctx: typer.Context) -> None:
    """List tenants with their plan, quotas and state."""
    store = open_store(ctx, existing=True)
    table = Table("slug", "name", "plan", "quotas", "state")
    for tenant in _every(lambda cursor: store.tenants.list(limit=1000, cursor=cursor)):
        quotas = tenant.quotas.model_dump(exclude_none=True)
        table.add_row(
            tenant.slug,
            tenant.name,
            tenant.plan,
            _quota_list(quotas),
            "active" if tenant.is_active else "deactivated",
        )
    out.print(table)


@tenants_app.command("deactivate")
def tenants_deactivate(
    ctx: typer.Context, slug: Annotated[str, typer.Argument(help="The tenant.")]
) -> None:
    """Deactivate a tenant: its keys stop working at once; its data stays."""
    open_store(ctx).tenants.update(slug, actor=CLI_ACTOR, is_active=False)
    out.print(f"Deactivated tenant {slug}")


@tenants_app.command("activate")
def tenants_activate(
    ctx: typer.Context, slug: Annotated[str, typer.Argument(help="The tenant.")]
) -> None:
    """Reactivate a tenant."""
    open_store(ctx).tenants.update(slug, actor=CLI_ACTOR, is_active=True)
    out.print(f"Activated tenant {slug}")


def _quota_list(quotas: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in quotas.items()) or "none"


# --- secrets ------------------------------------------------------------------------------


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for CTXBASE_SECRET_KEY (nothing is stored)."""
    from ctxbase.secrets import generate_key

    print(generate_key())


@secrets_app.command("rotate")
def secrets_rotate(ctx: typer.Context) -> None:
    """Re-encrypt every stored secret with a new key.

    With a key file, a new key is made and the file rewritten (an interrupted run is safe
    to repeat). With CTXBASE_SECRET_KEY, put the new key first and the old one after a
    comma, run this, then drop the old key."""
    from ctxbase.store.rotation import rotate_secrets

    count = rotate_secrets(open_store(ctx))
    out.print(f"Re-encrypted {count} stored secret(s) with the new key")
