"""``ctxbase databases``: databases registered for a deployment, tested, initialized and
activated (passwords stored encrypted, never shown)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from ctxbase.cli.common import open_store, out
from ctxbase.errors import InvalidInputError

if TYPE_CHECKING:
    from ctxbase.store.databases import Kind

databases_app = typer.Typer(
    help="Registered databases: add, test, initialize, activate.", no_args_is_help=True
)


@databases_app.command("add")
def databases_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the database.")],
    kind: Annotated[str, typer.Option(help="postgresql or sqlite.")] = "postgresql",
    host: Annotated[str | None, typer.Option(help="PostgreSQL host.")] = None,
    port: Annotated[int | None, typer.Option(help="PostgreSQL port.")] = None,
    database: Annotated[str | None, typer.Option(help="PostgreSQL database.")] = None,
    schema: Annotated[str | None, typer.Option(help="PostgreSQL schema.")] = None,
    user: Annotated[str | None, typer.Option(help="PostgreSQL user.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    sslmode: Annotated[str | None, typer.Option(help="e.g. require, verify-full.")] = None,
    pool_size: Annotated[int | None, typer.Option(help="Connections kept open.")] = None,
    max_overflow: Annotated[int | None, typer.Option(help="Extra connections.")] = None,
    sqlite_path: Annotated[str | None, typer.Option(help="SQLite file.")] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
) -> None:
    """Register a database (the password is stored encrypted, never shown)."""
    import sys

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise InvalidInputError(
            "--password-stdin read no password", hint='pipe it in: printf %s "$PW" | ctxbase …'
        )
    record = open_store(ctx).databases.add(
        name=name,
        kind=cast("Kind", kind),
        host=host,
        port=port,
        database=database,
        schema_name=schema,
        username=user,
        password=password,
        sslmode=sslmode,
        pool_size=pool_size,
        max_overflow=max_overflow,
        sqlite_path=sqlite_path,
        description=description,
    )
    out.print(f"Registered {record.name} ({record.kind}), id {record.id}")


@databases_app.command("list")
def databases_list(ctx: typer.Context) -> None:
    """List the registered databases."""
    table = Table("name", "kind", "where", "status", "active", "pgvector")
    for record in open_store(ctx, existing=True).databases.list():
        where = (
            record.sqlite_path
            if record.sqlite_path
            else (f"{record.host or 'local socket'}:{record.port or 5432}/{record.database}")
        )
        table.add_row(
            record.name,
            record.kind,
            where or "-",
            record.status,
            "yes" if record.is_active else "",
            record.pgvector_version or "-",
        )
    out.print(table)


@databases_app.command("test")
def databases_test(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Connect and report: server version, pgvector, schema revision, or why not."""
    report = open_store(ctx).databases.test(name)
    _print_test(report)
    if not report.ok:
        raise typer.Exit(1)


@databases_app.command("init")
def databases_init(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    require_pgvector: Annotated[
        bool, typer.Option("--require-pgvector", help="Fail if pgvector cannot be enabled.")
    ] = False,
) -> None:
    """Bring the database's schema to head, enabling pgvector where possible."""
    report = open_store(ctx).databases.initialize(name, require_pgvector=require_pgvector)
    _print_test(report)


@databases_app.command("stats")
def databases_stats(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Rows and bytes per table of the database."""
    table = Table("table", "rows", "bytes")
    for entry in open_store(ctx, existing=True).databases.statistics(name):
        table.add_row(
            entry.table, str(entry.rows), "-" if entry.bytes is None else str(entry.bytes)
        )
    out.print(table)


@databases_app.command("activate")
def databases_activate(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Make NAME the database the server serves (a running server: POST …/activate)."""
    store = open_store(ctx)
    report = store.databases.test(name)
    if not report.ok:
        raise InvalidInputError(f"{name} cannot be used: {report.reason}")
    record = store.databases.mark_active(name)
    assert record is not None
    out.print(f"{record.name} is active; servers started on {store.db.url.masked()} serve it")


@databases_app.command("deactivate")
def databases_deactivate(ctx: typer.Context) -> None:
    """Serve the command's own database again (no registered database is active)."""
    store = open_store(ctx)
    store.databases.mark_active(None)
    # (no URL: an SQLite file's is kept encrypted by the migration jobs that used it)
    out.print("No database is active; servers serve the database they start on")


@databases_app.command("remove")
def databases_remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Forget a registered database (its data is not touched)."""
    open_store(ctx).databases.delete(name)
    out.print(f"Removed {name}")


def _print_test(report: Any) -> None:
    colour = {"ok": "green", "degraded": "yellow", "error": "red"}[report.status]
    out.print(f"status: [{colour}]{report.status}[/]")
    out.print(f"server version: {report.server_version or '-'}")
    if report.pgvector is not None:
        pgvector = report.pgvector
        out.print(f"pgvector: {pgvector.version if pgvector.installed else 'missing'}")
    out.print(f"schema: {report.schema_revision or 'empty'} (head {report.head_revision})")
    if report.reason:
        out.print(f"reason: {report.reason}")
    for problem in report.problems:
        out.print(f"  • {problem['message']}")
