"""``ctxbase keys``, ``ctxbase tenants`` and ``ctxbase secrets``: administration commands.

A new key is printed once, alone on the last line of the output (so scripts can take it
with ``tail -n1``), and never again: only its hash is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

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


@tenants_app.command("create")
def tenants_create(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Lowercase letters, digits, - and _.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    plan: Annotated[str, typer.Option(help="Plan name.")] = "free",
    max_projects: Annotated[int | None, typer.Option(help="Quota: projects.")] = None,
    max_items: Annotated[int | None, typer.Option(help="Quota: stored items.")] = None,
    requests_per_minute: Annotated[int | None, typer.Option(help="Quota: per key.")] = None,
    max_storage_bytes: Annotated[int | None, typer.Option(help="Quota: stored bytes.")] = None,
) -> None:
    """Create a tenant (with its quotas), then give it keys with `ctxbase keys create`."""
    quotas = {
        "projects": max_projects,
        "items": max_items,
        "requests_per_minute": requests_per_minute,
        "storage_bytes": max_storage_bytes,
    }
    tenant = open_store(ctx).tenants.create(
        slug,
        actor=CLI_ACTOR,
        name=name,
        plan=plan,
        quotas={k: v for k, v in quotas.items() if v is not None},
    )
    out.print(f"Created tenant {tenant.slug} (plan {tenant.plan})")


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
            ", ".join(f"{k}={v}" for k, v in quotas.items()) or "none",
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
