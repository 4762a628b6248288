"""The errors ctxbase raises.

Every error a caller can meet is a :class:`CtxbaseError`. Each class carries the stable
``code`` the REST API puts in its error envelope and the HTTP status it maps to, so the
library, the server and the HTTP client agree on one vocabulary::

    CtxbaseError
    ├── ConfigurationError        bad settings or database URL
    ├── InvalidInputError         a value the caller passed is not acceptable (422)
    │   ├── InvalidCursorError    a page cursor this list did not return (400)
    │   └── PayloadTooLargeError  content, metadata or a batch is over its limit (413)
    ├── NotFoundError             absent, or not visible to the caller (404)
    ├── ConflictError             a uniqueness or sequence conflict (409)
    ├── VersionConflictError      compare-and-set on a version failed (412)
    ├── AuthenticationError       no key, or a key that is not valid (401)
    ├── PermissionDeniedError     a valid key that may not do this (403)
    │   └── QuotaExceededError    a write past a quota of the tenant's plan (403)
    ├── RateLimitedError          too many requests; wait `retry_after` seconds (429)
    └── DatabaseError             the database could not do what was asked (503)
        ├── DatabaseUnavailableError   server unreachable, wrong credentials, no database
        ├── DatabaseBusyError          locks held too long by other writers
        └── SchemaError                schema missing, out of date, or a migration failed
"""

from __future__ import annotations

from typing import Any


class CtxbaseError(Exception):
    """Base of every error raised by ctxbase. A subclass states its ``code``, and its
    ``http_status`` unless it keeps its parent's, in its class statement."""

    code = "error"
    http_status = 500

    def __init_subclass__(
        cls, *, code: str | None = None, http_status: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if http_status is not None:
            cls.http_status = http_status

    def __init__(self, message: str, *, details: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The error envelope body shared by every interface."""
        details = self.details
        if self.hint:
            extra = (
                details
                if isinstance(details, dict)
                else {}
                if details is None
                else {"info": details}
            )
            details = {**extra, "hint": self.hint}
        return {"error": {"code": self.code, "message": self.message, "details": details}}


class ConfigurationError(CtxbaseError, code="configuration_error", http_status=500):
    """Raised when a setting or a database URL cannot be used."""


class InvalidInputError(CtxbaseError, code="invalid_input", http_status=422):
    """Raised when a value passed by the caller is not acceptable."""


class InvalidCursorError(InvalidInputError, code="invalid_cursor", http_status=400):
    """Raised when a page cursor is not one the same list returned: crafted, truncated,
    from another list or project, or from an older version."""


class PayloadTooLargeError(InvalidInputError, code="payload_too_large", http_status=413):
    """Raised when content, metadata or a batch exceeds its configured limit."""


class NotFoundError(CtxbaseError, code="not_found", http_status=404):
    """Raised when a record does not exist or is not visible to the caller."""


class ConflictError(CtxbaseError, code="conflict", http_status=409):
    """Raised on a uniqueness conflict or an unexpected event sequence."""


class VersionConflictError(CtxbaseError, code="version_conflict", http_status=412):
    """Raised when compare-and-set finds a version other than the one expected."""


class AuthenticationError(CtxbaseError, code="unauthenticated", http_status=401):
    """Raised when a request carries no API key or an invalid one."""


class PermissionDeniedError(CtxbaseError, code="permission_denied", http_status=403):
    """Raised when a valid key is not allowed to perform the operation."""


class QuotaExceededError(PermissionDeniedError, code="quota_exceeded", http_status=403):
    """Raised when a write would take a tenant past a quota of its plan (projects, stored
    items, storage bytes)."""


class RateLimitedError(CtxbaseError, code="rate_limited", http_status=429):
    """Raised when a key (or a client failing to authenticate) sends requests too fast;
    ``retry_after`` says how many seconds to wait."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        details: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, details=details, hint=hint)
        self.retry_after = retry_after


class DatabaseError(CtxbaseError, code="database_error", http_status=503):
    """Raised when the database fails in a way the caller cannot fix by changing input."""


class DatabaseUnavailableError(DatabaseError, code="database_unavailable"):
    """Raised when the database server is unreachable, refuses the login or lacks the database."""


class DatabaseBusyError(DatabaseError, code="database_busy"):
    """Raised when other writers held the database locked longer than the busy timeout."""


class SchemaError(DatabaseError, code="schema_error"):
    """Raised when the schema is missing, out of date, or a migration fails."""


def error_class_for(code: str, status: int) -> type[CtxbaseError]:
    """The error class an API error envelope stands for (used by the HTTP client)."""
    classes: list[type[CtxbaseError]] = [CtxbaseError]
    while classes:
        cls = classes.pop()
        if cls.code == code:
            return cls
        classes.extend(cls.__subclasses__())
    if status in (400, 422):
        return InvalidInputError
    return CtxbaseError


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "CtxbaseError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "InvalidCursorError",
    "InvalidInputError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitedError",
    "SchemaError",
    "VersionConflictError",
]
