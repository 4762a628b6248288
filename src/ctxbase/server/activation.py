"""Which database a running server serves, and switching it without a restart.

The server starts on its ``database_url``: the *home* store, which keeps the registered
database configurations and records which one is active. At start the server serves the
active one if there is one (so an activation survives a restart); activating another
switches ``app.state.store`` at once. The home store stays open for the configurations.
Background workers keep the store they started with until the next restart.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI

from ctxbase.db import migrate
from ctxbase.errors import InvalidInputError
from ctxbase.store import Store
from ctxbase.store.databases import DatabaseConfigRecord

log = logging.getLogger("ctxbase.server")
_lock = threading.Lock()


def home(app: FastAPI) -> Store:
    """The store the server started on (its configurations live there)."""
    store: Store = getattr(app.state, "home", None) or app.state.store
    return store


def start(app: FastAPI) -> None:
    """Remember the home store; serve the active configuration if one is recorded."""
    app.state.home = app.state.store
    if app.state.home.schema_revision != migrate.head_revision():
        return  # not migrated yet (/ready says so): no configurations to read
    active = app.state.home.databases.active()
    if active is not None:
        log.info("Serving the active database %s", active.name)
        _switch(app, _open(app.state.home, active.id))


def stop(app: FastAPI) -> None:
    """Close a store opened by an activation; the home store is the caller's to close."""
    if getattr(app.state, "home", None) is not None and app.state.store is not app.state.home:
        _switch(app, app.state.home)


def activate(app: FastAPI, ref: Any) -> DatabaseConfigRecord:
    """Test the configuration, open a store on it, record it as active, serve it."""
    registry = home(app).databases
    report = registry.test(ref)
    if not report.ok:
        raise InvalidInputError(
            f"The database cannot be activated: {report.reason}", details=report.model_dump()
        )
    with _lock:
        store = _open(home(app), ref)
        try:
            record = registry.mark_active(ref)
        except BaseException:
            store.close()
            raise
        _switch(app, store)
    assert record is not None
    log.info("Now serving the database %s", record.name)
    return record


def _open(home_store: Store, ref: Any) -> Store:
    return Store(settings=home_store.databases.settings_for(ref))


def _switch(app: FastAPI, store: Store) -> None:
    from ctxbase.server.app import _serve

    previous, previous_metrics = app.state.store, getattr(app.state, "metrics", None)
    _serve(app, store)
    if previous is not store and previous is not getattr(app.state, "home", None):
        if previous_metrics is not None:
            previous_metrics.close()
        previous.close()
