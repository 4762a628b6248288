"""Console sessions: an API key exchanged for a cookie, and the CSRF token of each form.

Signing in checks the key exactly as the REST API does, then keeps it in this process's
memory under a random session token; the browser holds only that token, in a cookie that
scripts cannot read (``HttpOnly``), that no other site's request carries
(``SameSite=Strict``), sent only over TLS when the console is served over TLS (``Secure``),
and that expires. The server keeps only the token's hash, so a memory dump of the session
table does not hand out cookies. A session ends when it expires, when its key stops
working (revoked, expired, tenant deactivated: checked on every request), or on sign-out.

Every form carries the session's CSRF token and every unsafe request must send it back
(a form field or the ``X-CSRF-Token`` header htmx adds); the sign-in form, which comes
before any session, pairs a token in its own short-lived cookie with the same value in
the form.

Sessions live in the process that made them: behind several server processes, route a
browser to the same process (sticky sessions) or sign in again after a switch.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "ctxbase_console"
LOGIN_COOKIE = "ctxbase_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_TOKEN_SECONDS = 3600
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One signed-in browser."""

    key: str | None  # the API key, in memory only; None when the server runs without keys
    csrf: str
    expires_at: float  # time.time()
    flashes: list[tuple[str, str]] = field(default_factory=list)
    project: str | None = None  # the project last opened, for the dashboard

    def flash(self, kind: str, message: str) -> None:
        """Show ``message`` on the next page (kind: ``ok`` or ``error``)."""
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


class Sessions:
    """The sessions of one server process, by the hash of their token."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, key: str | None, *, expires_at: float | None = None) -> tuple[str, Session]:
        """A new session for ``key``; returns the cookie's token and the session. It ends
        after the session lifetime, or when the key expires if that comes first."""
        token = secrets.token_urlsafe(32)
        ends = time.time() + self.ttl_seconds
        session = Session(key, secrets.token_urlsafe(32), min(ends, expires_at or ends))
        with self._lock:
            self._sessions[_digest(token)] = session
            while len(self._sessions) > MAX_SESSIONS:  # the oldest go first
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        digest = _digest(token)
        with self._lock:
            session = self._sessions.get(digest)
            if session is not None and session.expires_at <= time.time():
                del self._sessions[digest]
                return None
            return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)


def is_secure(request: Request) -> bool:
    """Whether the browser reached the console over TLS (directly, or as a proxy that
    uvicorn trusts says)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, **_cookie_flags(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, **_cookie_flags(request))


def _cookie_flags(request: Request) -> dict[str, Any]:
    """Where the console's cookies apply, and what keeps them from scripts and other sites."""
    return {
        "path": request.scope.get("root_path") or "/",
        "httponly": True,
        "samesite": "strict",
        "secure": is_secure(request),
    }
