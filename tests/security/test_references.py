"""A write may link only to the caller's own records.

A memory names the conversation and the first message it came from. Naming another
tenant's (or another project's) record must be refused exactly as naming one that does
not exist, through the library and REST alike: otherwise the answer is an oracle for
other tenants' ids, and their deletions would reach into the caller's rows. No driver's
text reaches the caller either.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

import ctxbase
from ctxbase.db.schema import Memory as MemoryRow
from ctxbase.db.schema import Project as ProjectRow
from ctxbase.db.schema import table
from ctxbase.errors import CtxbaseError
from ctxbase.server import create_app
from ctxbase.store.base import Scope

API = "/api/v1"
#: What drivers say about constraints; none of it may reach a caller.
DRIVER_WORDS = ("constraint", "foreign key", "violates", "sqlite", "psycopg", "insert into")


class World:
    """Tenants acme (projects alpha, beta) and globex, each with a conversation and a
    message; ``add`` makes a memory as acme's writer in alpha, by library or REST."""

    def __init__(self, store: ctxbase.Store, client: TestClient | None) -> None:
        store.tenants.create("acme")
        store.tenants.create("globex")
        self.acme = store.scoped(Scope(tenant="acme", server_admin=False, role="writer"))
        globex = store.scoped(Scope(tenant="globex", server_admin=False))
        self.acme.projects.create("alpha")
        self.acme.projects.create("beta")
        globex.projects.create("bravo")
        self.own = self._conversation(self.acme, "alpha")
        self.other_own = self._conversation(self.acme, "alpha")
        self.beta = self._conversation(self.acme, "beta")
        self.foreign = self._conversation(globex, "bravo")
        self.globex = globex
        self.client = client
        self.key = store.keys.create(tenant="acme", role="writer").key

    @staticmethod
    def _conversation(view: ctxbase.Store, project: str) -> tuple[str, str]:
        conversation = view.conversations.create(title="t", project=project)
        message = view.messages.append(conversation.id, role="user", content="hi", project=project)
        return str(conversation.id), str(message.id)

    def add(self, **links: str) -> tuple[int, Any]:
        """(status, answer) of adding a memory with ``links``: the error envelope if refused."""
        if self.client is None:
            try:
                memory = self.acme.memories.add("fact", project="alpha", **links)
            except CtxbaseError as error:
                return error.http_status, error.to_dict()
            return 201, memory
        answer = self.client.post(
            f"{API}/projects/alpha/memories",
            json={"content": "fact", **links},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        return answer.status_code, answer.json()


@pytest.fixture(params=["library", "rest"])
def world(request: pytest.FixtureRequest, store: ctxbase.Store) -> Iterator[World]:
    if request.param == "library":
        yield World(store, None)
        return
    settings = store.settings.model_copy(update={"auth": "required"})
    with TestClient(create_app(store=store, settings=settings)) as client:
        yield World(store, client)


def _random() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize("field", ["conversation_id", "first_message_id"])
def test_another_tenants_id_reads_as_one_that_does_not_exist(world: World, field: str) -> None:
    index = 0 if field == "conversation_id" else 1
    refused = {
        "another tenant's": world.add(**{field: world.foreign[index]}),
        "another project's": world.add(**{field: world.beta[index]}),
        "a random": world.add(**{field: _random()}),
    }
    random = refused["a random"]
    assert random[0] == 422
    assert random[1]["error"]["code"] == "invalid_input"
    assert field in random[1]["error"]["message"]
    for what, answer in refused.items():
        assert answer == random, f"{what} id is answered differently: {answer} vs {random}"
        assert not any(word in str(answer).lower() for word in DRIVER_WORDS), answer
    assert world.acme.memories.list(project="alpha").items == []  # nothing was written


def test_a_message_of_another_conversation_is_refused(world: World) -> None:
    status, answer = world.add(conversation_id=world.own[0], first_message_id=world.other_own[1])
    assert (
        status == 422
        and answer == world.add(conversation_id=world.own[0], first_message_id=_random())[1]
    )


def test_own_links_are_kept_and_a_foreign_deletion_cannot_touch_them(world: World) -> None:
    status, _ = world.add(conversation_id=world.own[0], first_message_id=world.own[1])
    assert status == 201
    world.add(conversation_id=world.foreign[0])  # refused; must leave no trace
    world.globex.conversations.delete(world.foreign[0], project="bravo")
    (memory,) = world.acme.memories.list(project="alpha").items
    assert (str(memory.conversation_id), str(memory.first_message_id)) == world.own
    assert memory.updated_at == memory.created_at


def _violation(store: ctxbase.Store, write: Callable[[Any], object]) -> CtxbaseError:
    with pytest.raises(CtxbaseError) as raised:
        with store.db.connect(write=True) as connection:
            write(connection)
    return raised.value


def test_constraint_violations_answer_in_ctxbase_words(store: ctxbase.Store) -> None:
    """Below the Store's own checks the database's constraints still hold; what they say
    is translated without the driver's text, which stays the error's cause for logs."""
    project_id = store.projects.get("default").id
    memory = {"project_id": project_id, "content": "x", "memory_type": "fact"}
    memory |= {"importance": 0.5, "metadata": {}, "access_count": 0}
    dangling = _violation(
        store,
        lambda c: c.execute(
            insert(table(MemoryRow)),
            {**memory, "id": uuid.uuid4(), "conversation_id": uuid.uuid4()},
        ),
    )
    projects = table(ProjectRow)
    tenant_id = store.tenants.get("default").id
    duplicate = _violation(
        store,
        lambda c: c.execute(
            insert(projects),
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "slug": "default",
                "name": "d",
                "settings": {},
            },
        ),
    )
    assert (dangling.http_status, duplicate.http_status) == (422, 409)
    for error in (dangling, duplicate):
        shown = str(error.to_dict()).lower()
        assert not any(word in shown for word in DRIVER_WORDS), shown
        assert error.__cause__ is not None  # the driver's own error, for the logs
