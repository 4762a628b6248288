"""Pages: Jinja2 templates, escaped by default, with the filters the console needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ctxbase.api import OPERATIONS
from ctxbase.server.console.diffs import line_diff, word_diff
from ctxbase.server.console.sessions import CSRF_FIELD

TEMPLATES = Path(__file__).parent / "templates"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h {minute:02d}m" if hours else f"{minute}m {second:02d}s"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _summary(name: str) -> str:
    """An operation's one-line summary, from its declaration (as plain text)."""
    return OPERATIONS[name].summary.replace("`", "")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        number=_number,
        size=_size,
        duration=_duration,
        pretty=_pretty,
    )
    env.globals.update(
        summary=_summary,
        line_diff=line_diff,
        word_diff=word_diff,
        CSRF_FIELD=CSRF_FIELD,
    )
    return env


ENV = _environment()


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus the console's path as ``base``)."""
    values = {"base": request.scope.get("root_path", ""), **context}
    html = ENV.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=headers)
