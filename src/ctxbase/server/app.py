"""The FastAPI application."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import Depends, FastAPI

import ctxbase
from ctxbase.config import Settings
from ctxbase.db import migrate
from ctxbase.events.worker import DeliveryWorker
from ctxbase.server import activation
from ctxbase.server.access import AuthenticateFirst, Gate, check_auth_mode, warn_if_open
from ctxbase.server.api_docs import install_api_docs
from ctxbase.server.console import install_console
from ctxbase.server.deps import authorize
from ctxbase.server.errors import install_error_handlers
from ctxbase.server.jobs import JobRunner, interrupt_dead_jobs
from ctxbase.server.limits import BodySizeLimit
from ctxbase.server.metrics import Metrics, MetricsMiddleware
from ctxbase.server.routes import (
    admin,
    contexts,
    conversations,
    database_configs,
    embeddings,
    events,
    generated,
    health,
    jobs,
    metrics,
    migrations,
    state,
    subscriptions,
)
from ctxbase.server.worker import BacklogWorker
from ctxbase.store import Store
from ctxbase.store.usage import UsageCache

API_PREFIX = "/api/v1"
ROUTERS = (  # hand-written routes; the generated ones serve every other operation
    health,
    metrics,
    conversations,
    contexts,
    state,
    embeddings,
    events,
    subscriptions,
    database_configs,
    jobs,
    migrations,
    admin,
)

log = logging.getLogger("ctxbase.server")


def create_app(*, store: Store | None = None, settings: Settings | None = None) -> FastAPI:
    """The ctxbase server over ``store``, or over a store opened from ``settings``.

    A store passed in stays open when the app stops; one opened here is closed with it.
    """
    settings = settings or (store.settings if store is not None else Settings())
    check_auth_mode(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is None:  # opened here, closed here
            _serve(app, Store(settings=settings))
        activation.start(app)  # serve the active database configuration, if any
        _interrupt_dead_jobs(app)
        log.info("ctxbase %s serving %r", ctxbase.__version__, app.state.store)
        warn_if_open(settings)
        _warm_up(app.state.store)
        worker = None
        if settings.embed_worker_interval > 0:
            worker = BacklogWorker(app.state.store, settings.embed_worker_interval)
            worker.start()
        delivery = None
        if settings.delivery_worker:
            delivery = DeliveryWorker(app.state.store)
            delivery.start()
        try:
            async with _mcp_running(app):
                yield
        finally:
            if delivery is not None:
                delivery.stop()
            if worker is not None:
                worker.stop()
            # Migrations are cancelled (they resume with --resume), a re-embedding is
            # waited for: never leave a job writing to a closed store.
            app.state.jobs.stop()
            activation.stop(app)
            if store is None:
                app.state.metrics.close()
                app.state.store.close()

    app = FastAPI(
        title="ctxbase",
        version=ctxbase.__version__,
        summary="The database layer for AI agents.",
        description="Conversations, context units, memories and agent state for AI agents. "
        "Errors always have the shape "
        '`{"error": {"code": "...", "message": "...", "details": ...}}`.',
        docs_url=None,  # /docs and /redoc come from install_api_docs, with local assets
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
    )
    app.state.gate = Gate(settings)
    app.state.jobs = JobRunner()
    if store is not None:  # usable at once, also by clients that skip the lifespan
        _serve(app, store)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthenticateFirst, prefix=API_PREFIX)  # before any body is read
    app.add_middleware(MetricsMiddleware, prefix=API_PREFIX)
    for module in ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(generated.router(), prefix=API_PREFIX)
    install_api_docs(app, api_prefix=API_PREFIX)
    app.state.mcp = _mount_mcp(app, settings)
    install_console(app)
    return app


def _mount_mcp(app: FastAPI, settings: Settings) -> Any:
    """Serve MCP at ``/mcp`` (see :mod:`ctxbase.integrations.mcp.http`) when enabled and the
    ``mcp`` package is installed; the endpoint, or None."""
    if not settings.mcp_enabled:
        return None
    try:
        from ctxbase.integrations.mcp.http import mcp_route
    except ImportError:
        log.info("MCP is not served at /mcp: install ctxbase[mcp]")
        return None
    route, endpoint = mcp_route(settings)
    app.router.routes.append(route)
    return endpoint


def _mcp_running(app: FastAPI) -> AbstractAsyncContextManager[Any]:
    endpoint = getattr(app.state, "mcp", None)
    return endpoint.running() if endpoint is not None else nullcontext()


def _interrupt_dead_jobs(app: FastAPI) -> None:
    """Jobs left running by a server process of this host that died are cancelled now."""
    home: Store = app.state.home
    if home.schema_revision != migrate.head_revision():
        return  # not migrated yet: no job records to read
    for job_id in interrupt_dead_jobs(home):
        log.warning("Job %s was left running by a server process that stopped: cancelled", job_id)


def _warm_up(store: Store) -> None:
    """Load a local embedding model in the background, so the first write need not wait.

    Models load once per process (shared by every embedder of that name); nothing here
    touches the database."""
    kind, _, model = store.settings.embedder.partition(":")
    if kind != "local":
        return

    def load() -> None:
        from ctxbase.embeddings.local import DEFAULT_MODEL, LocalEmbedder

        try:
            LocalEmbedder(model or DEFAULT_MODEL).embed(["warm up"])
        except Exception as error:  # writes will queue their vectors meanwhile
            log.warning("Embedding model not ready: %s", error)

    threading.Thread(target=load, name="ctxbase-warm-up", daemon=True).start()


def _serve(app: FastAPI, store: Store) -> None:
    app.state.store = store
    app.state.metrics = Metrics(store)
    app.state.usage = UsageCache(store.tenants.usage)


def app_from_environment() -> FastAPI:
    """Factory used by ``ctxbase serve``: settings come from the environment and ``.env``."""
    return create_app(settings=Settings())
