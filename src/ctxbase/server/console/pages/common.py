"""What every console page shares: the visitor, the page frame, actions and redirects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ctxbase.errors import CtxbaseError, InvalidInputError
from ctxbase.records import Project
from ctxbase.server.console.counts import project_counts
from ctxbase.server.console.guard import Visitor, visitor
from ctxbase.server.console.render import render

VisitorDep = Annotated[Visitor, Depends(visitor)]
PAGE = 50
T = TypeVar("T")
#: Sections of the navigation: (label, path under the project or console, operation
#: whose access shows it).
PROJECT_NAV = (
    ("Conversations", "conversations", "conversations.list"),
    ("Memories", "memories", "memories.list"),
    ("Contexts", "contexts", "contexts.list"),
    ("State", "state", "state.list"),
    ("Search", "search", "search"),
    ("Events", "events", "events.list"),
    ("Subscriptions", "subscriptions", "subscriptions.list"),
)
ADMIN_NAV = (
    ("Databases", "databases", "databases.list"),
    ("Migrations", "migrations", "migrations.list"),
    ("Tenants", "tenants", "tenants.list"),
    ("Projects", "projects", "projects.list"),
    ("Keys", "keys", "keys.list"),
    ("Audit log", "audit", "audit.list"),
    ("Embeddings", "embeddings", "embeddings.status"),
)


async def visible_projects(v: Visitor) -> list[Project]:
    """The projects the visitor's key sees (the first 200: the switcher's choices); none
    when its scopes do not include listing projects."""
    if not v.can("projects.list"):
        return []
    page = await v.api.projects.list(limit=200)
    return list(page.items)


async def page(
    v: Visitor,
    template: str,
    *,
    title: str,
    project: str | None = None,
    section: str | None = None,
    status: int = 200,
    projects: list[Project] | None = None,
    **context: Any,
) -> Response:
    """A full page in the console's frame (``projects``: the visible ones, when the
    handler has read them already)."""
    if projects is None:
        projects = await visible_projects(v)
    slugs = [p.slug for p in projects]
    if project is None and (v.session.project in slugs or not slugs):
        project = v.session.project  # keep the project's links on other pages
    choices = [(p.slug, p.name or p.slug) for p in projects]
    if project is not None and project not in slugs:
        choices.insert(0, (project, project))  # a key that may not list projects
    admin = [(label, path) for label, path, op in ADMIN_NAV if v.can(op)]
    frame = {
        "v": v,
        "title": title,
        "project": project,
        "section": section,
        "projects": choices,
        "project_nav": PROJECT_NAV,
        "admin_nav": admin,
        "flashes": v.session.take_flashes(),
    }
    return render(v.request, template, {**frame, **context}, status=status)


def fragment(v: Visitor, template: str, **context: Any) -> Response:
    """Part of a page, for htmx to swap in."""
    return render(v.request, template, {"v": v, **context})


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


async def outcome(call: Callable[[], Awaitable[T]]) -> tuple[T | None, str | None]:
    """What ``call`` answers, or why bad input or a conflict was refused (the page says
    it). A key that may not make the call is answered 403 as the API answered it."""
    try:
        return await call(), None
    except CtxbaseError as error:
        if error.http_status in (401, 403):
            raise
        return None, str(error)


async def act(v: Visitor, call: Callable[[], Awaitable[T]], done: str) -> T | None:
    """Make the API call of a form (reading its fields inside ``call``); flash ``done``,
    or the reason the call was refused (see :func:`outcome`)."""
    result, error = await outcome(call)
    if error is not None:
        v.flash("error", error)
    elif done:
        v.flash("ok", done)
    return result


async def delete_item(
    v: Visitor, call: Callable[[], Awaitable[Any]], done: str, item_url: str
) -> Response:
    """Delete an item with ``call`` (see :func:`act`); then show the list it was in (its
    page's URL less the last part), or its page again if the deletion was refused."""
    deleted = await act(v, lambda: finished(call()), done)
    return redirect(item_url if deleted is None else item_url.rsplit("/", 1)[0])


async def listing(
    v: Visitor,
    section: str,
    call: Callable[[], Awaitable[Any]],
    *,
    title: str,
    cursor: str | None,
    filters: dict[str, str] | None = None,
    project: str | None = None,
    shown: Callable[[Any], Any] | None = None,
    **context: Any,
) -> Response:
    """A list page (template ``{section}.html``): the page of items ``call`` reads
    (each as ``shown`` makes it), and a pager whose links keep ``filters``. In a project,
    which it opens: the project in the title, and how many items of the kind it holds."""
    filters = filters or {}
    if project is None:
        listed, where = await call(), f"{v.base}/admin"
    else:
        opened(v, project)
        listed, context["total"] = await asyncio.gather(call(), count_of(v, project, section))
        title, where = f"{title} · {project}", f"{v.base}/p/{project}"
    return await page(
        v,
        f"{section}.html",
        title=title,
        project=project,
        section=section,
        items=listed.items if shown is None else [shown(item) for item in listed.items],
        next_cursor=listed.next_cursor,
        cursor=cursor,
        filters=filters,
        here=f"{where}/{section}{query_string(**filters)}",
        **context,
    )


def field(v: Visitor, name: str) -> str | None:
    """A form field, stripped; None when empty."""
    value = v.form.get(name, "").strip()
    return value or None


def json_field(v: Visitor, name: str, *, default: Any = None) -> Any:
    """A form field holding JSON; InvalidInputError naming the field if it is not JSON."""
    text = v.form.get(name, "").strip()
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"{name} is not valid JSON: {error}") from None


def number_field(v: Visitor, name: str, kind: type[T] = float) -> T | None:  # type: ignore[assignment]
    return number(name, field(v, name), kind)


def number(name: str, text: str | None, kind: type[T] = float) -> T | None:  # type: ignore[assignment]
    """Field ``name``'s ``text`` as a ``kind``; None when empty."""
    if text is None or not text.strip():
        return None
    try:
        return kind(text)  # type: ignore[call-arg]
    except ValueError:
        raise InvalidInputError(f"{name} must be a number, not {text[:40]!r}") from None


async def count_of(v: Visitor, project: str, kind: str) -> int:
    """How many ``kind`` items ``project`` holds (see :mod:`..counts`)."""
    counts = await run_in_threadpool(project_counts, v.store(), project, (kind,))
    return counts[kind]


def opened(v: Visitor, project: str) -> None:
    v.session.project = project


def query_string(**values: Any) -> str:
    """``?a=1&b=2`` of the values given (empty ones left out), for pager links."""
    kept = {k: v for k, v in values.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


async def finished(call: Any) -> bool:
    """True once ``call`` (a deletion, which answers nothing) is done."""
    await call
    return True


def json_text(text: str) -> dict[str, Any] | None:
    """A JSON object typed in a filter field; InvalidInputError if it is not one."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError('metadata must be a JSON object, e.g. {"k": "v"}') from None
    if not isinstance(value, dict):
        raise InvalidInputError('metadata must be a JSON object, e.g. {"k": "v"}')
    return value


def utc(text: str | None) -> datetime | None:
    """A ``datetime-local`` field's value, read as UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"Not a date and time: {text[:40]!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
