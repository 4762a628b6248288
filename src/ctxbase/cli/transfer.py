"""Commands that move data: ``migrate`` between databases, ``export`` and ``import`` an
archive, ``backup`` and ``restore``.

A database is named by URL or, with no ``://`` in it, by the name of a configuration
registered in the command's database (``--database-url``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from ctxbase.cli.common import err, open_database, out, progress_bars, resolve_database, settings_of
from ctxbase.cli.progress import QuietOption, TransferProgress
from ctxbase.errors import InvalidInputError

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.transfer.report import MigrationReport

commands = typer.Typer()

#: Exit status of `ctxbase migrate` by job status.
EXIT_CODES = {"completed": 0, "completed_with_errors": 2, "cancelled": 3, "failed": 1}


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


@commands.command("migrate")
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
    discard: Annotated[
        str | None,
        typer.Option(
            "--discard",
            help="Remove what unfinished job JOB copied into --to, and its record.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Copy a store from one database to another, verified; resumable after a crash."""
    from ctxbase import transfer

    settings = settings_of(ctx)
    if target is None:
        raise InvalidInputError("--to is required", hint="e.g. --to postgresql://user@host/db")
    target_url = resolve_database(ctx, target)
    if discard:
        if resume or source:
            raise InvalidInputError("--discard takes only --to")
        removed = transfer.discard(discard, target_url, settings=settings)
        out.print(
            f"Discarded migration job {discard}: removed {sum(removed.values())} row(s) "
            f"from {len(removed)} table(s)"
        )
        return
    source_url = resolve_database(ctx, source) if source else None
    # Drawn on each report rather than by a thread of its own: a job whose process runs a
    # single thread can fork its worker (see ``transfer.worker``).
    with progress_bars("{task.description:<16}", auto_refresh=False) as progress:
        bars = MigrationBars(progress)
        if resume:
            err.print(f"Resuming migration job {resume}")
            report = transfer.resume(
                resume, target_url, source=source_url, settings=settings, on_progress=bars.update
            )
        else:
            if source_url is None:
                raise InvalidInputError("--from is required (or --resume JOB)")
            from ctxbase.db.schema import new_id

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


@commands.command("export")
def export_command(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive file to write.")],
    project: Annotated[
        str | None, typer.Option(help="Only this project (of the default tenant).")
    ] = None,
    with_embeddings: Annotated[
        bool, typer.Option("--with-embeddings", help="Include the vectors.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Write the store to a portable, versioned, compressed JSON Lines archive."""
    from ctxbase.transfer.archive import export_archive

    db = _existing_database(ctx)
    with TransferProgress(quiet=quiet) as shown:
        report = export_archive(
            db,
            output,
            project=project,
            with_embeddings=with_embeddings,
            progress=shown.rows,
            on_phase=shown.phase,
        )
    out.print(f"Exported {sum(report.rows.values())} row(s) to {report.path}")


@commands.command("import")
def import_command(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="Archive written by `ctxbase export`.")],
    quiet: QuietOption = False,
    # --- --format rows: another system's rows (ctxbase.cli.rows) ---
    file_format: Annotated[
        str, typer.Option("--format", help="archive, or rows: JSON Lines of another system.")
    ] = "archive",
    project: Annotated[str, typer.Option(help="rows: the project to import into.")] = "default",
    batch_size: Annotated[int, typer.Option(min=1, help="rows: rows per transaction.")] = 1000,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="rows: leave rows already there alone.")
    ] = False,
    map_file: Annotated[
        Path | None, typer.Option(help="rows: write original -> new ids here (JSON Lines).")
    ] = None,
    id_namespace: Annotated[
        str | None, typer.Option(help="rows: UUID namespace of ids that are not UUIDs.")
    ] = None,
) -> None:
    """Read an export archive into the database (all or nothing), or with `--format rows`
    another system's rows, batch by batch."""
    if file_format == "rows":
        from ctxbase.cli.rows import import_rows

        import_rows(
            ctx,
            archive,
            project=project,
            batch_size=batch_size,
            skip_existing=skip_existing,
            map_file=map_file,
            id_namespace=id_namespace,
            quiet=quiet,
        )
        return
    rows_options = (project != "default", batch_size != 1000, skip_existing, map_file, id_namespace)
    if file_format != "archive" or any(rows_options):
        raise InvalidInputError(
            f"--format is archive or rows, not {file_format!r}"
            if file_format != "archive"
            else "--project, --batch-size, --skip-existing, --map-file and --id-namespace "
            "go with --format rows"
        )
    from ctxbase.transfer.archive import import_archive

    db = open_database(ctx)
    with TransferProgress(quiet=quiet) as shown:
        report = import_archive(db, archive, progress=shown.rows, on_phase=shown.phase)
    out.print(f"Imported {sum(report.rows.values())} row(s) from {archive}")
    if report.skipped_columns or report.skipped_tables:
        skipped = ", ".join(report.skipped_tables + report.skipped_columns)
        err.print(f"Not known to this version, skipped: {skipped}")


@commands.command("backup")
def backup_command(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="Backup file to write.")],
    quiet: QuietOption = False,
) -> None:
    """Back the database up (SQLite online backup; pg_dump, else an export archive)."""
    from ctxbase.transfer.backup import backup

    db = _existing_database(ctx)
    with TransferProgress(quiet=quiet) as shown:
        report = backup(
            db, output, settings=settings_of(ctx), progress=shown.rows, on_phase=shown.phase
        )
    out.print(f"Backup of {report.bytes} bytes written to {report.path} ({report.method})")
    if report.note:
        err.print(report.note)


def _existing_database(ctx: typer.Context) -> Database:
    """The command's database, which it reads: an SQLite path with no file is an error,
    never a new empty database."""
    from ctxbase.db.urls import parse_database_url
    from ctxbase.transfer.endpoints import check_sqlite_file

    url = parse_database_url(settings_of(ctx).database_url)
    check_sqlite_file(url, "", create=False)
    return open_database(ctx)


@commands.command("restore")
def restore_command(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Argument(help="A file written by `ctxbase backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Replace the database's contents with a backup. CURRENT DATA IS LOST."""
    from ctxbase.transfer.backup import restore

    db = open_database(ctx)
    if not backup_file.is_file():
        raise InvalidInputError(f"No such backup file: {backup_file}")
    if not yes:
        typer.confirm(f"Replace all ctxbase data in {db.url.masked()}?", abort=True)
    with TransferProgress(quiet=quiet) as shown:
        report = restore(
            db, backup_file, settings=settings_of(ctx), progress=shown.rows, on_phase=shown.phase
        )
    out.print(f"Restored {db.url.masked()} from {report.path} ({report.method})")
