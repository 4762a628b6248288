"""Commands that move data: ``migrate``, ``export``, ``import``, ``backup``, ``restore``,
and ``databases`` (registered configurations). Registered on the main app by ``register``.

A database is named by URL or, with no ``://`` in it, by the name of a configuration
registered in the command's database (``--database-url``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ctxbase.config import Settings
from ctxbase.db.database import Database
from ctxbase.db.schema import new_id
from ctxbase.errors import InvalidInputError
from ctxbase.transfer.report import MigrationReport

out = Console()
err = Console(stderr=True)

#: Exit status of `ctxbase migrate` by job status.
EXIT_CODES = {"completed": 0, "completed_with_errors": 2, "cancelled": 3, "failed": 1}


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def resolve_database(ctx: typer.Context, spec: str) -> str:
    """A URL as given, or the URL of the configuration named ``spec``."""
    if "://" in spec or spec.startswith("memory:"):
        return spec
    from ctxbase.store.databases import url_of_named_config

    return url_of_named_config(_settings(ctx), spec)


class MigrationBars:
    """One progress bar per table, fed from the job's progress reports."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def update(self, report: MigrationReport) -> None:
        with self._lock:
            live = report.progress
            for table, total in live.totals.items():
                if table not in self.tasks:
                    self.tasks[table] = self.progress.add_task(table, total=total or 1)
                done = live.rows.get(table, 0) + live.failed.get(table, 0)
                self.progress.update(self.tasks[table], completed=done if total else 1)
            self.progress.refresh()


def migrate_command(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option("--from", help="Source URL or configuration name.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--to", help="Target URL or configuration name.")
    ] = None,
    tables: Annotated[
        str | None, typer.Option(help="Comma-separated tables (default: all data).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per batch.")] = 2000,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Re-embed everything with the target's model.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue job JOB (needs --to).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Copy a store from one database to another, verified; resumable after a crash."""
    from ctxbase import transfer

    settings = _settings(ctx)
    if target is None:
        raise InvalidInputError("--to is required", hint="e.g. --to postgresql://user@host/db")
    target_url = resolve_database(ctx, target)
    source_url = resolve_database(ctx, source) if source else None
    with _progress() as progress:
        bars = MigrationBars(progress)
        if resume:
            err.print(f"Resuming migration job {resume}")
            report = transfer.resume(
                resume, target_url, source=source_url, settings=settings, on_progress=bars.update
            )
        else:
            if source_url is None:
                raise InvalidInputError("--from is required (or --resume JOB)")
            job_id = new_id()
            # Printed first, so a run that dies can be resumed with --resume.
            err.print(f"Migration job {job_id}")
            report = transfer.migrate(
                source_url,
                target_url,
                tables=_split(tables),
                batch_size=batch_size,
                reembed=reembed,
                settings=settings,
                on_progress=bars.update,
                job_id=job_id,
            )
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        print_report(report)
    raise typer.Exit(EXIT_CODES[report.status])


def print_report(report: MigrationReport) -> None:
    table = Table("table", "source", "copied", "failed", "target", "verified")
    verification = report.verification
    for name in report.tables:
        checked = verification.tables.get(name) if verification else None
        table.add_row(
            name,
            str(report.progress.totals.get(name, 0)),
            str(report.progress.rows.get(name, 0)),
            str(report.progress.failed.get(name, 0)),
            str(checked.target_rows) if checked else "-",
            ("[green]equal[/]" if checked.equal else "[red]differs[/]") if checked else "-",
        )
    out.print(table)
    colour = "green" if report.status == "completed" else "yellow"
    out.print(f"Job {report.id}: [{colour}]{report.status}[/]")
    for entry in report.error_log[:20]:
        out.print(f"  {entry.get('table') or '-'} {entry.get('key') or ''}: {entry['error']}")
    if len(report.error_log) > 20:
        out.print(f"  … {len(report.error_log) - 20} more in the job's error log")


def _split(tables: str | None) -> list[str] | None:
    if tables is None:
        return None
    return [t.strip() for t in tables.split(",") if t.strip()]


def _progress() -> Progress:
    # Drawn on each report rather than by a thread of its own: a job whose process runs a
    # single thread can fork its worker (see ``transfer.worker``).
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        auto_refresh=False,
    )


# --- export, import, backup, restore --------------------------------------------------


def _database(ctx: typer.Context) -> Database:
    settings = _settings(ctx)
    db = Database(settings.database_url, settings=settings)
    ctx.call_on_close(db.dispose)
    return db


def export_command(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive file to write.")],
    project: Annotated[
        str | None, typer.Option(help="Only this project (of the default tenant).")
    ] = None,
    with_embeddings: Annotated[
        bool, typer.Option("--with-embeddings", help="Include the vectors.")
    ] = False,
) -> None:
    """Write the store to a portable, versioned, compressed JSON Lines archive."""
    from ctxbase.transfer.archive import export_archive

    report = export_archive(
        _database(ctx), output, project=project, with_embeddings=with_embeddings
    )
    out.print(f"Exported {sum(report.rows.values())} row(s) to {report.path}")


def import_command(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="Archive written by `ctxbase export`.")],
) -> None:
    """Read an export archive into the database (all or nothing)."""
    from ctxbase.transfer.archive import import_archive

    report = import_archive(_database(ctx), archive)
    out.print(f"Imported {sum(report.rows.values())} row(s) from {archive}")
    if report.skipped_columns or report.skipped_tables:
        skipped = ", ".join(report.skipped_tables + report.skipped_columns)
        err.print(f"Not known to this version, skipped: {skipped}")


def backup_command(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Backup file to write.")],
) -> None:
    """Back the database up (SQLite online backup; pg_dump, else an export archive)."""
    from ctxbase.transfer.backup import backup

    report = backup(_database(ctx), output, settings=_settings(ctx))
    out.print(f"Backup of {report.bytes} bytes written to {report.path} ({report.method})")
    if report.note:
        err.print(report.note)


def restore_command(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Argument(help="A file written by `ctxbase backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database's contents with a backup. CURRENT DATA IS LOST."""
    from ctxbase.transfer.backup import restore

    db = _database(ctx)
    if not backup_file.is_file():
        raise InvalidInputError(f"No such backup file: {backup_file}")
    if not yes:
        typer.confirm(f"Replace all ctxbase data in {db.url.masked()}?", abort=True)
    report = restore(db, backup_file, settings=_settings(ctx))
    out.print(f"Restored {db.url.masked()} from {report.path} ({report.method})")


# --- databases ---------------------------------------------------------------------------

databases_app = typer.Typer(
    help="Registered databases: add, test, initialize, activate.", no_args_is_help=True
)


def _store(ctx: typer.Context) -> Any:
    from ctxbase.store import Store

    store = Store(settings=_settings(ctx))
    ctx.call_on_close(store.close)
    return store


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
    record = _store(ctx).databases.add(
        name=name,
        kind=kind,
        host=host,
        port=port,
        database=database,
        schema=schema,
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
    for record in _store(ctx).databases.list():
        where = (
            record.sqlite_path
            if record.kind == "sqlite"
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
    report = _store(ctx).databases.test(name)
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
    report = _store(ctx).databases.initialize(name, require_pgvector=require_pgvector)
    _print_test(report)


@databases_app.command("stats")
def databases_stats(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Rows and bytes per table of the database."""
    table = Table("table", "rows", "bytes")
    for entry in _store(ctx).databases.statistics(name):
        table.add_row(
            entry.table, str(entry.rows), "-" if entry.bytes is None else str(entry.bytes)
        )
    out.print(table)


@databases_app.command("activate")
def databases_activate(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Make NAME the database the server serves (a running server: POST …/activate)."""
    store = _store(ctx)
    report = store.databases.test(name)
    if not report.ok:
        raise InvalidInputError(f"{name} cannot be used: {report.reason}")
    record = store.databases.mark_active(name)
    assert record is not None
    out.print(f"{record.name} is active; servers started on {store.db.url.masked()} serve it")


@databases_app.command("deactivate")
def databases_deactivate(ctx: typer.Context) -> None:
    """Serve the command's own database again (no registered database is active)."""
    store = _store(ctx)
    store.databases.mark_active(None)
    # (no URL: an SQLite file's is kept encrypted by the migration jobs that used it)
    out.print("No database is active; servers serve the database they start on")


@databases_app.command("remove")
def databases_remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Forget a registered database (its data is not touched)."""
    _store(ctx).databases.delete(name)
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


def register(app: typer.Typer) -> None:
    """Add the data-moving and database commands to the ``ctxbase`` app."""
    app.command("migrate")(migrate_command)
    app.command("export")(export_command)
    app.command("import")(import_command)
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.add_typer(databases_app, name="databases")
