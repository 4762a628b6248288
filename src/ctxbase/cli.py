"""The ``ctxbase`` command line.

Every command reads settings from the environment (``CTXBASE_*``) and ``.env``; the
``--database-url`` option overrides the database. Errors print a message and a hint on
stderr and exit with status 1, never a traceback.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import ctxbase
from ctxbase.admin_cli import keys_app, secrets_app, tenants_app
from ctxbase.config import Settings
from ctxbase.db.urls import parse_database_url
from ctxbase.errors import CtxbaseError
from ctxbase.transfer.cli import register as register_transfer_commands

if TYPE_CHECKING:  # loaded by the commands that use them: a command starts faster
    from ctxbase.db.database import Database
    from ctxbase.db.diagnostics import ConnectionReport

app = typer.Typer(
    name="ctxbase",
    help="ctxbase: the database layer for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Schema migrations of the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
app.add_typer(secrets_app, name="secrets")
register_transfer_commands(app)  # migrate, export, import, backup, restore, databases

out = Console()
err = Console(stderr=True)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        help="Database URL; default from CTXBASE_DATABASE_URL or sqlite:///./ctxbase.db.",
        show_default=False,
    ),
]


@app.callback()
def _root(ctx: typer.Context, database_url: DatabaseUrlOption = None) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=False)],
    )
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    ctx.obj = Settings(**overrides)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _database(ctx: typer.Context) -> Database:
    from ctxbase.db.database import Database

    settings = _settings(ctx)
    db = Database(settings.database_url, settings=settings)
    ctx.call_on_close(db.dispose)
    return db


# --- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the schema (to the newest revision by default), keeping all data."""
    from ctxbase.db import migrate

    db = _database(ctx)
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

    db = _database(ctx)
    before = migrate.current_revision(db)
    migrate.downgrade(db, revision)
    after = migrate.current_revision(db)
    out.print(f"Schema of {db.url.masked()}: {before or 'empty'} → {after or 'empty'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision of the database and whether it is the newest."""
    from ctxbase.db import migrate

    db = _database(ctx)
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

    db = _database(ctx)
    if not yes:
        typer.confirm(f"Delete all ctxbase data in {db.url.masked()}?", abort=True)
    migrate.reset(db)
    out.print(f"Schema of {db.url.masked()} reset to {migrate.current_revision(db)}")


# --- doctor -------------------------------------------------------------------------------


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero on warnings too.")
    ] = False,
) -> None:
    """Check the database: connection, server version, pgvector, schema revision."""
    from ctxbase.db.diagnostics import check_connection

    report = check_connection(_database(ctx))
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
    if report.backend == "postgresql":
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


# --- data -------------------------------------------------------------------------------


@app.command()
def prune(ctx: typer.Context) -> None:
    """Delete expired memories and state entries in every project."""
    from ctxbase.store import Store

    with Store(settings=_settings(ctx)) as store:
        counts = store.prune()
    out.print(
        f"Deleted {counts['memories']} expired memories and {counts['state']} expired state entries"
    )


@app.command()
def embed(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 256,
) -> None:
    """Embed every item still waiting for a vector of the active model."""
    from ctxbase.store import Store

    with Store(settings=_settings(ctx)) as store:
        model = store.embeddings.model
        if model is None:
            raise CtxbaseError("No embedder is configured", hint="set CTXBASE_EMBEDDER")
        total = sum(store.embeddings.pending().values())
        with _progress() as progress:
            task = progress.add_task(f"embedding with {model}", total=total)
            done = store.embeddings.backfill(
                batch_size=batch_size, progress=lambda _kind, n: progress.advance(task, n)
            )
    out.print(f"Embedded {done} item(s) with {model}")


@app.command()
def reembed(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="e.g. openai:text-embedding-3-small")],
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="Delete other models' vectors afterwards.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 256,
) -> None:
    """Build MODEL's vectors beside the current ones, then switch searches to it.

    Searches keep working during the run; run it again to resume after an interruption."""
    from ctxbase.store import Store

    with Store(settings=_settings(ctx)) as store:
        before = store.embeddings.active_model()
        with _progress() as progress:
            task = progress.add_task(f"re-embedding with {model}", total=None)

            def advance(_kind: str, count: int) -> None:
                status = store.embeddings.reembed_status() or {}
                progress.update(task, total=status.get("total"), advance=count)

            job = store.embeddings.reembed(
                model, batch_size=batch_size, drop_old=drop_old, progress=advance
            )
    out.print(f"Active model: {before} → {job['model']} ({job['done']} item(s) embedded)")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )


# --- serve --------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (CTXBASE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (CTXBASE_PORT).")] = None,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes.")] = False,
) -> None:
    """Run the REST server (API under /api/v1, OpenAPI at /docs)."""
    import uvicorn

    from ctxbase.server.access import check_auth_mode

    settings = _settings(ctx)
    bind = host or settings.host
    # The server reads its settings from the environment, in this process or a reloader's
    # (the address too: authentication may be off only on a loopback one).
    os.environ["CTXBASE_DATABASE_URL"] = settings.database_url
    os.environ["CTXBASE_HOST"] = bind
    check_auth_mode(settings.model_copy(update={"host": bind}))
    out.print(f"ctxbase {ctxbase.__version__} on {parse_database_url(settings.database_url)}")
    if settings.auth == "required":
        _first_admin_key(settings)
    uvicorn.run(
        "ctxbase.server.app:app_from_environment",
        factory=True,
        host=bind,
        port=port or settings.port,
        reload=reload,
        log_level=settings.log_level,
    )


@app.command()
def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Make one pass over due deliveries, then exit.")
    ] = False,
) -> None:
    """Deliver subscribed events (webhook, Redis) until stopped; any number may run."""
    import signal

    from ctxbase.events.worker import DeliveryWorker
    from ctxbase.store import Store

    with Store(settings=_settings(ctx)) as store:
        delivery = DeliveryWorker(store)
        if once:
            out.print(f"Delivered {delivery.run_once()} event(s)")
            delivery.stop()
            return
        signal.signal(signal.SIGTERM, lambda *_: delivery.request_stop())
        out.print(f"ctxbase worker {delivery.owner} delivering from {store.db.url}")
        try:
            delivery.run()
        except KeyboardInterrupt:
            pass
        finally:
            delivery.stop()


def _first_admin_key(settings: Settings) -> None:
    """On a server with no working key, make the operator's first admin key and show it
    this once; later starts say nothing."""
    from ctxbase.store import Store

    with Store(settings=settings) as store:
        if store.keys.count():
            return
        created = store.keys.create(actor="serve", role="admin", name="first admin key")
    out.print(
        "No API key existed, so this admin key of the operator tenant was created. It is "
        "shown only now: store it, send it as `Authorization: Bearer <key>`, and make more "
        "with `ctxbase keys create`:"
    )
    print(created.key, flush=True)


@app.command()
def version() -> None:
    """Print the version of ctxbase and of its schema."""
    from ctxbase.db import migrate

    out.print(json.dumps({"ctxbase": ctxbase.__version__, "schema": migrate.head_revision()}))


def main() -> None:
    """Entry point of the ``ctxbase`` console script."""
    try:
        app()
    except CtxbaseError as e:
        err.print(f"[red]Error:[/] {e.message}", highlight=False)
        if e.hint:
            err.print(f"hint: {e.hint}", highlight=False)
        _exit(1)
    except SystemExit as e:  # how every command ends (click's standalone mode)
        if e.code is None or isinstance(e.code, int):
            _exit(e.code or 0)
        raise


def _exit(status: int) -> NoReturn:
    """End the process once the command is done, without tearing the interpreter down.

    Freeing every module and object one by one costs a quarter of a second after a
    command (SQLAlchemy, pydantic, numpy, Alembic…), longer than many commands take. The
    exit handlers still run and the output is flushed; only the teardown is skipped, and
    only when no other thread is left (one that is would be waited for as usual)."""
    if threading.active_count() > 1:
        raise SystemExit(status)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
