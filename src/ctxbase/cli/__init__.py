"""The ``ctxbase`` command line: one module per command group, shared helpers in ``common``.

Every command reads settings from the environment (``CTXBASE_*``) and ``.env``; the
``--database-url`` option overrides the database. Errors print a message and a hint on
stderr and exit with status 1, never a traceback.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Annotated, Any, NoReturn

import typer
from rich.logging import RichHandler

import ctxbase
from ctxbase.cli import admin, databases, db, maintenance, serve, transfer
from ctxbase.cli import mcp as mcp_cli
from ctxbase.cli.common import DatabaseUrlOption, accept_database_url, err
from ctxbase.cli.serve import _first_admin_key as _first_admin_key  # (where tests find it)
from ctxbase.config import Settings
from ctxbase.errors import CtxbaseError

app = typer.Typer(
    name="ctxbase",
    help="ctxbase: the database layer for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for group in (transfer, db, maintenance, serve):  # their commands, listed in this order
    app.add_typer(group.commands)
app.add_typer(db.db_app, name="db")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.tenants_app, name="tenants")
app.add_typer(admin.secrets_app, name="secrets")
app.add_typer(databases.databases_app, name="databases")
app.add_typer(mcp_cli.commands)
accept_database_url(app)  # before or after the command's name: `ctxbase db upgrade -d URL`


def _print_version(value: bool) -> None:
    if value:
        print(f"ctxbase {ctxbase.__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version of ctxbase and exit.",
    ),
]


@app.callback()
def _root(
    ctx: typer.Context, database_url: DatabaseUrlOption = None, version: VersionOption = False
) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=False)],
    )
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    ctx.obj = Settings(**overrides)


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


__all__ = ["app", "main"]
