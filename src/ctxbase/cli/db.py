"""``ctxbase db`` (schema migrations) and ``ctxbase doctor`` (is the database usable?)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ctxbase.cli.common import open_database, out

if TYPE_CHECKING:
    from ctxbase.db.diagnostics import ConnectionReport

db_app = typer.Typer(help="Schema migrations of the database.", no_args_is_help=True)
commands = typer.Typer()


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the schema (to the newest revision by default), keeping all data."""
    from ctxbase.db import migrate

    db = open_database(ctx)
    before = migrate.current_revision(db)
    migrate.upgrade(db, revision)
    after = migrate.current_revision(db)
    out.print(f"Schema of {db.url.masked()}: {before or 'empty'} → {after}")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision, `-1` for one step, `base`.")],
) -> None:
    """Downgrade the schema to an older revision (data of removed tables is lost)."""
    from ctxbase.db import migrate

    db = open_database(ctx)
    before = migrate.current_revision(db)
    migrate.downgrade(db, revision)
    after = migrate.current_revision(db)
    out.print(f"Schema of {db.url.masked()}: {before or 'empty'} → {after or 'empty'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision of the database and whether it is the newest."""
    from ctxbase.db import migrate

    db = open_database(ctx, existing=True)
    current = migrate.current_revision(db)
    head = migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}"
    out.print(f"{current or 'empty (no ctxbase schema)'} ({state})")


@db_app.command("history")
def db_history() -> None:
    """List every schema revision, newest first."""
    from ctxbase.db import migrate

    table = Table("revision", "down", "description")
    for rev in migrate.history():
        label = f"{rev.revision} (head)" if rev.is_head else rev.revision
        table.add_row(label, rev.down_revision or "-", rev.message.splitlines()[0])
    out.print(table)


@db_app.command("reset")
def db_reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop every ctxbase table and recreate the schema. ALL DATA IS LOST."""
    from ctxbase.db import migrate

    db = open_database(ctx)
    if not yes:
        typer.confirm(f"Delete all ctxbase data in {db.url.masked()}?", abort=True)
    migrate.reset(db)
    out.print(f"Schema of {db.url.masked()} reset to {migrate.current_revision(db)}")


@commands.command()
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero on warnings too.")
    ] = False,
) -> None:
    """Check the database: connection, server version, pgvector, schema revision."""
    from ctxbase.db.diagnostics import check_connection

    report = check_connection(open_database(ctx, existing=True))
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        _print_report(report)
    if report.status == "error" or (strict and report.status != "ok"):
        raise typer.Exit(1)


def _print_report(report: ConnectionReport) -> None:
    colour = {"ok": "green", "degraded": "yellow", "error": "red"}[report.status]
    table = Table(show_header=False, box=None)
    table.add_row("status", f"[{colour}]{report.status}[/]")
    table.add_row("backend", report.backend)
    table.add_row("database", report.database or "-")
    if report.host is not None or report.port is not None:  # a server, not a file
        table.add_row("host", f"{report.host or 'local socket'}:{report.port}")
    table.add_row("server version", report.server_version or "-")
    if report.pgvector is not None:
        pgv = report.pgvector
        table.add_row("pgvector", f"installed {pgv.version}" if pgv.installed else "missing")
    table.add_row("vector storage", report.vector_storage or "-")
    table.add_row("schema revision", report.schema_revision or "empty")
    table.add_row("head revision", report.head_revision)
    table.add_row("pending migrations", ", ".join(report.pending_migrations) or "none")
    out.print(table)
    for problem in report.problems:
        out.print(f"[{colour}]•[/] {problem.message}")
        if problem.hint:
            out.print(f"  hint: {problem.hint}")
