"""``/projects/{project}/state``: namespaced JSON values with ETag / If-Match."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse

from ctxbase.errors import InvalidInputError
from ctxbase.records import INT32_MAX, StateEntry, StateIn
from ctxbase.server.deps import ProjectSlug, StoreDep
from ctxbase.server.routing import declared

router = APIRouter(tags=["state"])

IfMatch = Annotated[
    str | None,
    Header(
        description='The version the entry must be at, e.g. `"3"` (an ETag this API returned: '
        f"0 to {INT32_MAX}; anything else is refused with 422).",
        max_length=100,
    ),
]
IfNoneMatch = Annotated[str | None, Header(description="`*`: only if the entry does not exist.")]


def _split(path: str) -> tuple[str, str]:
    namespace, _, key = path.strip("/").rpartition("/")
    return namespace, key


def _etag(entry: StateEntry) -> dict[str, str]:
    return {"ETag": f'"{entry.version}"'}


def _version(if_match: str | None, if_none_match: str | None) -> int | None:
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise InvalidInputError("If-None-Match supports only `*`")
        return 0
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    # isdigit() admits other scripts' digits ("٣"); an ETag of this API is ASCII. The
    # length check keeps int() from parsing a huge number before the range check.
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 10 or int(tag) > INT32_MAX:
        raise InvalidInputError(
            f'If-Match must be an ETag this API returned, e.g. "3" (0 to {INT32_MAX})',
            details=[{"location": ["header", "If-Match"], "message": "not a version"}],
        )
    return int(tag)


@declared(router, "state.get")
def get_state(project: ProjectSlug, path: str, store: StoreDep) -> JSONResponse:
    namespace, key = _split(path)
    entry = store.state.get(key, namespace=namespace, project=project)
    return JSONResponse(entry.model_dump(mode="json"), headers=_etag(entry))


@declared(router, "state.put", responses={201: {"model": StateEntry, "description": "Created"}})
def put_state(
    project: ProjectSlug,
    path: str,
    body: StateIn,
    store: StoreDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> JSONResponse:
    namespace, key = _split(path)
    entry = store.state.put(
        key,
        body.value,
        namespace=namespace,
        ttl_seconds=body.ttl_seconds,
        owner_conversation_id=body.owner_conversation_id,
        project=project,
        expected_version=_version(if_match, if_none_match),
    )
    status = 201 if entry.version == 1 else 200
    return JSONResponse(entry.model_dump(mode="json"), status_code=status, headers=_etag(entry))


@declared(router, "state.delete")
def delete_state(
    project: ProjectSlug, path: str, store: StoreDep, if_match: IfMatch = None
) -> Response:
    namespace, key = _split(path)
    store.state.delete(
        key, namespace=namespace, project=project, expected_version=_version(if_match, None)
    )
    return Response(status_code=204)
