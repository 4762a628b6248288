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
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def register(app: typer.Typer) -> None:
    """Add the data-moving commands to the ``ctxbase`` app."""
    app.command("migrate")(migrate_command)


__all__ = ["Any", "Path", "register"]
