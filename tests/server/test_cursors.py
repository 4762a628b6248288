"""Every list route refuses a cursor it did not return: 400 and the one JSON error shape.

The lists are the GET routes of the OpenAPI document with a ``cursor`` query parameter,
so a list is covered the day it is declared. Each gets its own next page's cursor back
(and must accept it), then random bytes, truncated cursors, real cursors of every other
list, of the same list in another project and of every list another tenant's admin reads
(in projects of the same names), real cursors re-encoded with keys of the wrong type or
range, and text that is no cursor at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.config import Settings
from ctxbase.server import create_app
from tests.cursors import (
    OTHER_TENANT,
    PROJECTS,
    Parents,
    garbage,
    seed_every_list,
    seed_the_other_tenant,
)

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


@dataclass(frozen=True)
class Seeded:
    """The client (as the operator's admin) and the parent records of each tenant."""

    http: TestClient
    parents: dict[str, Parents]
    their_parents: dict[str, Parents]
    #: Authorization of an admin key of :data:`OTHER_TENANT`.
    their_key: dict[str, str]


@pytest.fixture
def seeded(store: ctxbase.Store) -> Iterator[Seeded]:
    """A server with keys required, over a store where every list has a second page in
    both tenants, an admin key of the operator tenant (which may read every list) and one
    of the other tenant."""
    parents = seed_every_list(store)
    their_parents = seed_the_other_tenant(store)
    settings = store.settings.model_copy(
        update={"auth": "required", "rate_limit_per_minute": 1_000_000}
    )
    key = store.keys.create(role="admin", name="cursor tests").key
    theirs = store.keys.create(tenant=OTHER_TENANT, role="admin", name="their admin").key
    app = create_app(store=store, settings=settings)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app, headers=headers, raise_server_exceptions=False) as http:
        yield Seeded(http, parents, their_parents, {"Authorization": f"Bearer {theirs}"})


def test_the_walk_finds_the_lists() -> None:
    assert "/api/v1/projects/{project}/conversations" in LIST_ROUTES
    assert "/api/v1/keys" in LIST_ROUTES


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_list_refuses_every_cursor_it_did_not_return(seeded: Seeded, route: str) -> None:
    http, parents = seeded.http, seeded.parents
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
    foreign |= {
        f"of {p} in {project} of tenant {OTHER_TENANT}": c
        for (p, project), c in _their_cursors(seeded).items()
        if c != own  # the operator's lists (tenants, jobs) are the same list for anyone
    }
    problems = [
        f"{what}: {problem}"
        for what, cursor in garbage(own, foreign)
        if (problem := _not_a_cursor_error(http.get(url, params={"cursor": cursor})))
    ]
    assert not problems, "\n".join(problems)


def _their_cursors(seeded: Seeded) -> dict[tuple[str, str | None], str]:
    """The next page's cursor of every list the other tenant's admin may read, in its
    projects named as ours; the operator's lists refuse it (403) and give none."""
    cursors = {}
    for path in LIST_ROUTES:
        for project in _projects_of(path):
            url = _url(path, project, seeded.their_parents)
            response = seeded.http.get(url, params={"limit": 1}, headers=seeded.their_key)
            if response.status_code == 403 and project is None:
                continue
            assert response.status_code == 200, (url, response.text)
            cursor = response.json()["next_cursor"]
            assert isinstance(cursor, str), f"{url}: tests/cursors.py makes no second page"
            cursors[path, project] = cursor
    return cursors


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
