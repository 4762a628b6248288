"""``ctxbase db`` (schema migrations), ``ctxbase doctor`` (is the database usable?) and
``ctxbase stats`` (rows and size per table and per project)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperCommand

from ctxbase.cli.common import open_database, out

if TYPE_CHECKING:
    from ctxbase.db.diagnostics import ConnectionReport
    from ctxbase.db.statistics import DatabaseStatistics

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


class RelativeRevisionCommand(TyperCommand):
    """Reads ``-1`` (``-2``, …) as a revision, some steps down, rather than an option."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # (click's own Context)
        steps = [arg for arg in args if _STEPS_DOWN.fullmatch(arg)]
        if steps and "--" not in args:
            args = [arg for arg in args if arg not in steps] + ["--", *steps]
        return super().parse_args(ctx, args)


_STEPS_DOWN = re.compile(r"-\d+")


@db_app.command("downgrade", cls=RelativeRevisionCommand)
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Argument(help="Target revision: `-1` one step down (`-2` two), `base`.")
    ],
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


@commands.command()
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Rows and size per table and per project (a project's size is an estimate)."""
    from ctxbase.db.statistics import database_statistics

    figures = database_statistics(open_database(ctx, existing=True))
    if as_json:
        out.print_json(figures.model_dump_json())
    else:
        _print_statistics(figures)


def _print_statistics(figures: DatabaseStatistics) -> None:
    out.print(
        f"{figures.database} ({figures.backend}, schema {figures.schema_revision or 'empty'}): "
        f"{figures.total_rows} row(s), {human_size(figures.total_bytes)}"
    )
    tables = Table("table", "rows", "size", title="Tables")
    for entry in figures.tables:
        tables.add_row(entry.table, str(entry.rows), human_size(entry.bytes))
    out.print(tables)
    if not figures.projects:
        return
    projects = Table("project", "rows", "≈ size", "rows per table", title="Projects")
    for project in figures.projects:
        projects.add_row(
            f"{project.tenant}/{project.project}",
            str(project.total_rows),
            human_size(project.bytes),
            ", ".join(f"{table} {rows}" for table, rows in project.rows.items()) or "-",
        )
    out.print(projects)


def human_size(size: int | None) -> str:
    """``1.5 MiB``, ``812 B``; ``-`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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
