"""Every list route refuses a cursor it did not return: 400 and the one JSON error shape.

The lists are the GET routes of the OpenAPI document with a ``cursor`` query parameter,
so a list is covered the day it is declared. Each gets its own next page's cursor back
(and must accept it), then random bytes, truncated cursors, real cursors of every other
list and of the same list in another project, real cursors re-encoded with keys of the
wrong type or range, and text that is no cursor at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.config import Settings
from ctxbase.server import create_app
from tests.cursors import PROJECTS, Parents, garbage, seed_every_list

_SPEC = create_app(settings=Settings.from_values(database_url="sqlite://")).openapi()


def _takes_a_cursor(operation: dict[str, Any]) -> bool:
    return any((p["name"], p["in"]) == ("cursor", "query") for p in operation.get("parameters", []))


LIST_ROUTES = sorted(
    path for path, item in _SPEC["paths"].items() if _takes_a_cursor(item.get("get", {}))
)
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


class Answer(Protocol):
    """An HTTP response, whichever httpx the test client is built on."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


@pytest.fixture(params=["sqlite-memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def seeded(store: ctxbase.Store) -> Iterator[tuple[TestClient, dict[str, Parents]]]:
    """A server with keys required, over a store where every list has a second page, and
    an admin key of the operator tenant (which may read every list)."""
    parents = seed_every_list(store)
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    key = store.keys.create(role="admin", name="cursor tests").key
    app = create_app(store=store, settings=settings)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app, headers=headers, raise_server_exceptions=False) as http:
        yield http, parents


def test_the_walk_finds_the_lists() -> None:
    assert "/api/v1/projects/{project}/conversations" in LIST_ROUTES
    assert "/api/v1/keys" in LIST_ROUTES


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_list_refuses_every_cursor_it_did_not_return(
    seeded: tuple[TestClient, dict[str, Parents]], route: str
) -> None:
    http, parents = seeded
    real = {
        (path, project): _next_cursor(http, _url(path, project, parents))
        for path in LIST_ROUTES
        for project in _projects_of(path)
    }
    here = _projects_of(route)[0]
    url = _url(route, here, parents)
    own = real[route, here]
    accepted = http.get(url, params={"limit": 1, "cursor": own})
    assert accepted.status_code == 200, accepted.text
    foreign = {f"of {p} in {project}": c for (p, project), c in real.items() if c != own}
    problems = [
        f"{what}: {problem}"
        for what, cursor in garbage(own, foreign)
        if (problem := _not_a_cursor_error(http.get(url, params={"cursor": cursor})))
    ]
    assert not problems, "\n".join(problems)


def _projects_of(path: str) -> tuple[str | None, ...]:
    return PROJECTS if "{project}" in path else (None,)


def _url(path: str, project: str | None, parents: dict[str, Parents]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "project" and project is not None:
            return project
        try:
            return str(parents[str(project)].value_of(name))
        except KeyError:
            pytest.fail(f"{path}: tests/cursors.py makes no record for {{{name}}}")

    return _PATH_PARAMETER.sub(value, path)


def _next_cursor(http: TestClient, url: str) -> str:
    response = http.get(url, params={"limit": 1})
    assert response.status_code == 200, (url, response.text)
    cursor: Any = response.json()["next_cursor"]
    assert isinstance(cursor, str), f"{url}: tests/cursors.py makes no second page"
    return cursor


def _not_a_cursor_error(response: Answer) -> str | None:
    """What is wrong with ``response`` as the answer to a bad cursor, if anything."""
    if response.status_code != 400:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    body = response.json()
    if set(body) != {"error"} or set(body["error"]) != {"code", "message", "details"}:
        return f"not the error shape: {body}"
    if body["error"]["code"] != "invalid_cursor":
        return f"code {body['error']['code']!r}"
    return None
