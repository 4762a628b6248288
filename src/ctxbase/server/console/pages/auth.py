"""Signing in with an API key, and out."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ctxbase.errors import AuthenticationError, RateLimitedError
from ctxbase.server.console.guard import (
    authenticate,
    console_parent,
    read_form,
    same_origin,
    sessions_of,
)
from ctxbase.server.console.pages.common import VisitorDep, redirect
from ctxbase.server.console.render import render
from ctxbase.server.console.sessions import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_TOKEN_SECONDS,
    SESSION_COOKIE,
    clear_cookie,
    same_token,
    set_cookie,
)

router = APIRouter()
#: Why the sign-in page is shown (``?ended=``): fixed texts, never text from the URL.
ENDED = {
    "signout": "You are signed out.",
    "expired": "Your session expired; sign in again.",
    "key": "Your session ended: its key no longer works (revoked, expired, or its tenant "
    "deactivated).",
}


def _next(request: Request, wanted: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    root = request.scope.get("root_path", "")
    home = f"{root}/"
    if not wanted or "\\" in wanted:
        return home
    parts = urlsplit(wanted)
    if parts.scheme or parts.netloc or not wanted.startswith(f"{root}/") or wanted[1:2] == "/":
        return home
    return wanted


def _login_page(
    request: Request, *, error: str | None = None, notice: str | None = None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    auth_disabled = console_parent(request).state.gate.settings.auth == "disabled"
    context = {
        "title": "Sign in",
        "error": error,
        "notice": notice,
        "login_token": token,
        "next": _next(request, request.query_params.get("next")),
        "auth_disabled": auth_disabled,
    }
    response = render(request, "login.html", context, status=status)
    set_cookie(response, request, LOGIN_COOKIE, token, LOGIN_TOKEN_SECONDS)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if sessions_of(request).get(request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect(_next(request, request.query_params.get("next")))
    return _login_page(request, notice=ENDED.get(request.query_params.get("ended", "")))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not same_origin(request) or not expected or not same_token(form.get(CSRF_FIELD), expected):
        return _login_page(request, error="The sign-in form expired; please try again.", status=403)
    key = form.get("api_key", "").strip() or None
    try:
        principal = await run_in_threadpool(authenticate, console_parent(request), request, key)
    except (AuthenticationError, RateLimitedError) as error:
        return _login_page(request, error=error.message, status=error.http_status)
    expires = principal.expires_at.timestamp() if principal.expires_at else None
    token, session = sessions_of(request).create(key, expires_at=expires)
    session.flash("ok", f"Signed in as {principal.actor} ({principal.role}, {principal.tenant})")
    response = RedirectResponse(_next(request, form.get("next")), status_code=303)
    lifetime = int(sessions_of(request).ttl_seconds)
    set_cookie(response, request, SESSION_COOKIE, token, lifetime)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(v: VisitorDep) -> Response:
    request = v.request
    sessions_of(request).end(request.cookies.get(SESSION_COOKIE))
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/login?ended=signout", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response
