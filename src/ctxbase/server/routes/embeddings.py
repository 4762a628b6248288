"""``/embeddings``: the active model, the backlog, and re-embedding jobs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ctxbase.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError
from ctxbase.server.deps import StoreDep, audit

router = APIRouter(prefix="/embeddings", tags=["embeddings"])
log = logging.getLogger("ctxbase.server")


class EmbeddingsStatus(BaseModel):
    active_model: str | None
    pending: dict[str, int] = Field(description="Items still without a vector, per kind.")
    reembed: dict[str, Any] | None = Field(description="The last re-embedding job, if any.")


class ReembedRequest(BaseModel):
    model: str = Field(min_length=1, max_length=300, examples=["openai:text-embedding-3-small"])
    drop_old: bool = False
    batch_size: int = Field(256, ge=1, le=10_000)


@router.get("", response_model=EmbeddingsStatus, summary="Active model and backlog")
def embeddings_status(store: StoreDep) -> EmbeddingsStatus:
    return EmbeddingsStatus(
        active_model=store.embeddings.active_model(),
        pending=store.embeddings.pending(),
        reembed=store.embeddings.reembed_status(),
    )


@router.post(
    "/reembed",
    status_code=202,
    summary="Start re-embedding with another model (searches keep working)",
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


@router.get("/reembed", summary="Progress of the last re-embedding job")
def reembed_status(store: StoreDep) -> dict[str, Any]:
    status = store.embeddings.reembed_status()
    if status is None:
        raise NotFoundError("No re-embedding job has run on this database")
    return status


_lock = threading.Lock()
