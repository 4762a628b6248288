"""Running ctxbase: ``serve`` (the REST server), ``worker`` (event delivery), ``version``."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

import ctxbase
from ctxbase.cli.common import out, settings_of
from ctxbase.config import Settings
from ctxbase.db.urls import parse_database_url

commands = typer.Typer()


@commands.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (CTXBASE_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to bind (CTXBASE_PORT).")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes.")] = False,
) -> None:
    """Run the REST server (API under /api/v1, OpenAPI at /docs)."""
    import uvicorn

    from ctxbase.server.access import check_auth_mode

    settings = settings_of(ctx)
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


@commands.command()
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

    with Store(settings=settings_of(ctx)) as store:
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


@commands.command()
def version() -> None:
    """Print the version of ctxbase and of its schema."""
    from ctxbase.db import migrate

    out.print(json.dumps({"ctxbase": ctxbase.__version__, "schema": migrate.head_revision()}))
