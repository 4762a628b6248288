"""``/embeddings``: the active model, the backlog, and re-embedding jobs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ctxbase.api.models import EmbeddingsStatus, ReembedRequest
from ctxbase.errors import ConfigurationError, InvalidInputError, NotFoundError
from ctxbase.server import activation
from ctxbase.server.deps import StoreDep, audit
from ctxbase.server.jobs import report_json
from ctxbase.server.routes.jobs import runner
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
def start_reembed(body: ReembedRequest, request: Request) -> JSONResponse:
    """Builds the model's vectors beside the current ones in the background, then makes
    it the active model. The answer is the job (`id`, `status`, `progress`): follow it at
    `GET /jobs/{id}` or `GET /jobs/{id}/stream`, also after a restart."""
    store = request.app.state.store  # the served database, whoever's view asked
    try:
        embedder = store.embeddings.models.build(body.model)  # a bad spec is a 4xx now
    except ConfigurationError as e:
        raise InvalidInputError(e.message, hint=e.hint) from None
    if embedder is None:
        raise InvalidInputError("Re-embedding needs a model, not `none`")
    job = runner(request).start_reembed(
        store,
        activation.home(request.app),
        embedder,
        batch_size=body.batch_size,
        drop_old=body.drop_old,
    )
    audit(request, "embeddings.reembed", body.model, drop_old=body.drop_old, job=str(job.report.id))
    return JSONResponse({**report_json(job.report), "model": body.model}, status_code=202)


@declared(router, "embeddings.reembed_status")
def reembed_status(store: StoreDep) -> dict[str, Any]:
    status = store.embeddings.reembed_status()
    if status is None:
        raise NotFoundError("No re-embedding job has run on this database")
    return status
