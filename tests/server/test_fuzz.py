"""Property-based fuzzing of every operation in the OpenAPI document: no 5xx, ever.

schemathesis generates requests from ``/api/v1/openapi.json`` for every operation, sent
with an admin key to one app per backend (SQLite and PostgreSQL). Each must get a non-5xx
answer, and every error answer must have the one JSON error shape. Generation is
derandomized and bounded (``MAX_EXAMPLES`` per operation and backend) so the whole run
takes a couple of minutes; hostile text and numbers in every field are covered
systematically by tests/security/test_adversarial.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode

import ctxbase
from ctxbase.config import Settings
from ctxbase.server import create_app
from tests.conftest import open_store
from tests.postgres import PostgresServer

OPENAPI = "/api/v1/openapi.json"
#: The project deleting a project aims at: every other operation aims at `default`.
DOOMED = "doomed"
#: Per operation and backend: requests valid by the schema and requests that break it.
MAX_EXAMPLES = 15
_SPEC = create_app(settings=Settings.from_values(database_url="sqlite://")).openapi()
#: Not fuzzed, and why (their inputs are checked in the tests named):
_NOT_FUZZED = {
    # starts a job thread that may call a remote embedding provider and outlive the
    # store (tests/server/test_rest_api.py, tests/security/test_adversarial.py)
    ("POST", "/api/v1/embeddings/reembed"),
    # a live event stream never ends by design (tests/events/test_live_streams.py)
    ("GET", "/api/v1/projects/{project}/events/stream"),
}
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in _SPEC["paths"].items()
    for method in item
    if (method.upper(), path) not in _NOT_FUZZED
)


def test_every_operation_but_the_listed_is_fuzzed() -> None:
    every = {(m.upper(), p) for p, item in _SPEC["paths"].items() for m in item}
    assert every == set(OPERATIONS) | _NOT_FUZZED
    assert len(OPERATIONS) >= 70


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ctxbase.Store]:
    options = {"auth": "required", "rate_limit_per_minute": 1_000_000}
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        template = request.getfixturevalue("postgres_template")
        with server.database(template=template) as url, open_store(url, **options) as store:
            yield store
    else:
        path: Path = tmp_path_factory.mktemp("fuzz") / "ctxbase.db"
        with open_store(f"sqlite:///{path}", **options) as store:
            yield store


@pytest.fixture(scope="module")
def fuzz_target(fuzz_store: ctxbase.Store) -> tuple[Any, str]:
    """The app's schema, and an admin key of its tenant."""
    chat = fuzz_store.conversations.create(title="fuzz target")  # something for lists
    fuzz_store.messages.append(chat.id, role="user", content="hello")
    fuzz_store.memories.add("a memory to find")
    fuzz_store.events.append("fuzz.started", {"n": 1})
    fuzz_store.projects.create(DOOMED)
    key = fuzz_store.keys.create(role="admin", name="fuzz").key
    schema = schemathesis.openapi.from_asgi(OPENAPI, create_app(store=fuzz_store))
    return schema, key


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_causes_a_server_error(
    fuzz_target: tuple[Any, str], method: str, path: str
) -> None:
    schema, key = fuzz_target
    operation = schema[path][method]
    answers: list[str] = []

    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.given(case=cases)
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        if case.path_parameters and "project" in case.path_parameters:
            # Aim at a real project: unknown projects are a plain 404, tested elsewhere.
            doomed = (method, path) == ("DELETE", "/api/v1/projects/{project}")
            case.path_parameters["project"] = DOOMED if doomed else "default"
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        answers.append(str(response.status_code))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"code", "message", "details"}, body
            assert response.status_code != 401, "the admin key was refused"

    check()
    assert answers, "no request was sent"
