"""The console's application, mounted at ``/console`` in the ctxbase server.

It is a separate ASGI app under the server's: the API's own access dependency (which
refuses every route without a declared rule) does not apply to its pages, which check
their sessions themselves (:mod:`ctxbase.server.console.guard`) and act through the API.
Every response carries a strict Content-Security-Policy (scripts, styles and connections
from this server only; no inline script or style, no framing), and pages are never cached.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxbase.errors import CtxbaseError
from ctxbase.server.console.guard import CsrfRefused, SignInRequired, sessions_of
from ctxbase.server.console.pages import (
    admin,
    auth,
    browse,
    dashboard,
    databases,
    events,
    knowledge,
    migrations,
    search,
)
from ctxbase.server.console.render import render
from ctxbase.server.console.sessions import SESSION_COOKIE, Sessions

CONSOLE_PATH = "/console"
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("ctxbase.server")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the console's security headers to every response (pages are not cached), and
    answers an unexpected failure with an error page (logged, never shown)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{scope.get('root_path', '')}/static/")
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            log.exception("Console page %s failed", scope["path"])
            if started:
                raise
            request = Request(scope)
            page = _error_page(request, 500, "Error", "Something went wrong; the log says what.")
            await page(scope, receive, with_headers)


def create_console(parent: FastAPI) -> FastAPI:
    """The console app over ``parent``, the ctxbase server it is mounted in."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.parent = parent
    settings = parent.state.gate.settings
    console.state.sessions = Sessions(settings.console_session_minutes * 60)
    console.add_middleware(SecurityHeaders)
    console.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (
        auth,
        dashboard,
        browse,
        knowledge,
        search,
        events,
        databases,
        migrations,
        admin,
    ):
        console.include_router(module.router)
    _install_error_pages(console)
    return console


def install_console(app: FastAPI) -> None:
    """Serve the console at ``/console`` in ``app``; ``/`` leads to it."""
    app.mount(CONSOLE_PATH, create_console(app))

    async def to_console(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}{CONSOLE_PATH}/", status_code=307)

    app.add_route("/", to_console, include_in_schema=False)


def _install_error_pages(console: FastAPI) -> None:
    @console.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        root = request.scope.get("root_path", "")
        target = f"{root}/login?next={quote(_here(request), safe='')}"
        if error.message:
            target += "&ended=key"
        elif request.cookies.get(SESSION_COOKIE):
            target += "&ended=expired"
        if request.method != "GET":
            return _error_page(request, 401, "Sign in first", "Your session has ended.")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @console.exception_handler(CsrfRefused)
    async def csrf(request: Request, error: CsrfRefused) -> Response:
        return _error_page(request, 403, "Refused", str(error))

    @console.exception_handler(CtxbaseError)
    async def api_error(request: Request, error: CtxbaseError) -> Response:
        status = error.http_status if 400 <= error.http_status < 500 else 503
        return _error_page(request, status, _TITLES.get(status, "Error"), str(error))

    @console.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "Not found"
        return _error_page(
            request, error.status_code, _TITLES.get(error.status_code, "Error"), message
        )


_TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Changed meanwhile",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    503: "Database unavailable",
}


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    signed_in = sessions_of(request).get(request.cookies.get(SESSION_COOKIE)) is not None
    context = {"title": title, "message": message, "status": status, "signed_in": signed_in}
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, context, status=status)
