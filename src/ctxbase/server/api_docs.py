"""The browsable API docs: how to send a key, in the OpenAPI document, and pages that
need no network.

- Every operation that needs a key declares the two ways of sending one (``Bearer`` and
  ``X-API-Key``), so Swagger UI shows **Authorize** and *Try it out* sends the key. Which
  operations are public is read from the access rules, not repeated here.
- ``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from the server
  itself: the files the ``fastapi-offline`` package ships, served under
  :data:`ASSETS_URL`. A server on a machine without internet access keeps usable docs,
  and no page of the server pulls code from a CDN.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ctxbase.server.access import RULES

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`. The first `ctxbase serve` prints an "
        "admin key; make more with `ctxbase keys create` or `POST /api/v1/keys`.",
    },
    "X-API-Key": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key in the `X-API-Key` header.",
    },
}
#: Either scheme will do (a list of requirement objects is a choice in OpenAPI).
KEY_REQUIRED: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
_UNAUTHENTICATED = {"description": "No API key, or one that is unknown, revoked or expired"}


def install_api_docs(app: FastAPI, *, api_prefix: str) -> None:
    """Declare the key schemes in ``app``'s OpenAPI document and serve its docs pages.

    ``app`` must be made with ``docs_url=None, redoc_url=None`` (these pages replace
    FastAPI's, which load from a CDN)."""
    _declare_security(app, api_prefix)
    app.mount(ASSETS_URL, StaticFiles(directory=str(files("fastapi_offline") / "static")))
    app.add_route(DOCS_URL, _swagger_page(app), include_in_schema=False)
    app.add_route(REDOC_URL, _redoc_page(app), include_in_schema=False)


def add_security(schema: dict[str, Any], *, api_prefix: str) -> dict[str, Any]:
    """``schema`` with the key schemes declared and required by every non-public operation."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if is_public(method, path.removeprefix(api_prefix)):
                continue
            operation["security"] = KEY_REQUIRED
            operation.setdefault("responses", {}).setdefault("401", _UNAUTHENTICATED)
    return schema


def is_public(method: str, path: str) -> bool:
    """Whether the operation answers without a key (an operation without a rule does not:
    it is refused to everybody)."""
    return RULES.get((method.upper(), path)) == "public"


def _declare_security(app: FastAPI, api_prefix: str) -> None:
    generate = app.openapi  # FastAPI's own, which caches in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_security(generate(), api_prefix=api_prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _swagger_page(app: FastAPI) -> Callable[[Request], Any]:
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # keep the key across reloads; never ask an outside validator about the document
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    return swagger_ui


def _redoc_page(app: FastAPI) -> Callable[[Request], Any]:
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    return redoc
