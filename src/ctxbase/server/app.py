"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import ctxbase
from ctxbase.config import Settings
from ctxbase.server.errors import install_error_handlers
from ctxbase.server.routes import (
    contexts,
    conversations,
    health,
    memories,
    messages,
    projects,
    state,
)
from ctxbase.store import Store

API_PREFIX = "/api/v1"

log = logging.getLogger("ctxbase.server")


def create_app(*, store: Store | None = None, settings: Settings | None = None) -> FastAPI:
    """The ctxbase server over ``store``, or over a store opened from ``settings``.

    A store passed in stays open when the app stops; one opened here is closed with it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store or Store(settings=settings or Settings())
        log.info("ctxbase %s serving %r", ctxbase.__version__, app.state.store)
        try:
            yield
        finally:
            if owned:
                app.state.store.close()

    app = FastAPI(
        title="ctxbase",
        version=ctxbase.__version__,
        summary="The database layer for AI agents.",
        docs_url="/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
        lifespan=lifespan,
    )
    if store is not None:
        app.state.store = store
    install_error_handlers(app)
    for module in (health, projects, conversations, messages, contexts, memories, state):
        app.include_router(module.router, prefix=API_PREFIX)
    return app


def app_from_environment() -> FastAPI:
    """Factory used by ``ctxbase serve``: settings come from the environment and ``.env``."""
    return create_app(settings=Settings())
