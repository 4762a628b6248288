"""What every command group shares: the consoles, the settings, opening the database or
the store, progress bars, and databases named by URL or by registered name.

The database, the store and the transfer machinery are imported by the commands that use
them, never here: a command starts without loading what it does not need.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ctxbase.config import Settings

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store import Store

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


def accept_database_url(app: typer.Typer) -> None:
    """Give every command under ``app`` that reads the settings (it takes the context) the
    root's ``--database-url/-d`` too, so that it may come after the command's name."""
    for info in app.registered_commands:
        if info.callback is not None and _context_parameter(info.callback):
            info.callback = _with_database_url(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            accept_database_url(group.typer_instance)


def _context_parameter(callback: Callable[..., Any]) -> str | None:
    hints = typing.get_type_hints(callback)
    return next((name for name, hint in hints.items() if hint is typer.Context), None)


def _with_database_url(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with a ``--database-url/-d`` option that replaces the root's settings."""
    context = _context_parameter(callback)
    signature = inspect.signature(callback, eval_str=True)
    option = inspect.Parameter(
        "database_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DatabaseUrlOption
    )

    @functools.wraps(callback)
    def command(*args: Any, database_url: str | None = None, **kwargs: Any) -> Any:
        if database_url:
            kwargs[context or "ctx"].find_root().obj = Settings(database_url=database_url)
        return callback(*args, **kwargs)

    parameters = [*signature.parameters.values(), option]
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command read (environment, ``.env``, ``--database-url``)."""
    found = ctx.find_root().obj
    assert isinstance(found, Settings)
    return found


def open_database(ctx: typer.Context, *, existing: bool = False) -> Database:
    """The command's database, disposed of when the command ends. ``existing``: a command
    that only reads refuses an SQLite path with no file (opening one would create it)."""
    from ctxbase.db.database import Database

    config = settings_of(ctx)
    if existing:
        _refuse_missing_file(config)
    db = Database(config.database_url, settings=config)
    ctx.call_on_close(db.dispose)
    return db


def open_store(ctx: typer.Context, *, existing: bool = False) -> Store:
    """A store on the command's database, closed when the command ends; ``existing`` as
    for :func:`open_database`."""
    from ctxbase.store import Store

    if existing:
        _refuse_missing_file(settings_of(ctx))

    store = Store(settings=settings_of(ctx))
    ctx.call_on_close(store.close)
    return store


def _refuse_missing_file(config: Settings) -> None:
    """A command that only reads refuses an SQLite path with no file: opening it would
    create an empty database there."""
    from ctxbase.db.urls import parse_database_url
    from ctxbase.transfer.endpoints import check_sqlite_file

    check_sqlite_file(parse_database_url(config.database_url), "", create=False)


def resolve_database(ctx: typer.Context, spec: str) -> str:
    """A URL as given, or the URL of the configuration named ``spec``."""
    if "://" in spec or spec.startswith("memory:"):
        return spec
    from ctxbase.store.databases import url_of_named_config

    return url_of_named_config(settings_of(ctx), spec)


def progress_bars(
    description: str = "{task.description}", *, auto_refresh: bool = True
) -> Progress:
    """Progress bars on stderr, so that standard output holds only the result."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        auto_refresh=auto_refresh,
    )
