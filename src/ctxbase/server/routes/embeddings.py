"""``/embeddings``: the active model, the backlog, and re-embedding jobs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ctxbase.api.models import EmbeddingsStatus, ReembedRequest
from ctxbase.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError
from ctxbase.server.deps import StoreDep, audit
from ctxbase.server.routing import declared

router = APIRouter(tags=["embeddings"])
log = logging.getLogger("ctxbase.server")


@declared(router, "embeddings.status")
def embeddings_status(store: StoreDep) -> EmbeddingsStatus:
    return EmbeddingsStatus(
        active_model=store.embeddings.active_model(),
        pending=store.embeddings.pending(),
        reembed=store.embeddings.reembed_status(),
    )


@declared(
    router,
    "embeddings.start_reembed",
    responses={409: {"description": "A re-embedding job is already running here"}},
)
def start_reembed(body: ReembedRequest, store: StoreDep, request: Request) -> JSONResponse:
    """Builds the model's vectors beside the current ones in the background, then makes
    it the active model. Follow it with `GET /embeddings/reembed`."""
    from ctxbase.embeddings import embedder_from_spec

    try:
        embedder_from_spec(body.model)  # a bad spec is a 4xx now, not a failed job later
    except ConfigurationError as e:
        raise InvalidInputError(e.message, hint=e.hint) from None
    state = request.app.state
    with _lock:
        running = getattr(state, "reembed_thread", None)
        if running is not None and running.is_alive():
            raise ConflictError("A re-embedding job is already running")

        def run() -> None:
            try:
                store.embeddings.reembed(
                    body.model, batch_size=body.batch_size, drop_old=body.drop_old
                )
            except Exception:
                log.exception("Re-embedding with %s failed", body.model)

        state.reembed_thread = threading.Thread(target=run, name="ctxbase-reembed", daemon=True)
        state.reembed_thread.start()
    audit(request, "embeddings.reembed", body.model, drop_old=body.drop_old)
    return JSONResponse({"model": body.model, "status": "started"}, status_code=202)


@declared(router, "embeddings.reembed_status")
def reembed_status(store: StoreDep) -> dict[str, Any]:
    status = store.embeddings.reembed_status()
    if status is None:
        raise NotFoundError("No re-embedding job has run on this database")
    return status


_lock = threading.Lock()
