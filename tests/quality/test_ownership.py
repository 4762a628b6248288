"""Quality records belong to their conversation: deleted with it on every backend, and
never linked to a message of another conversation, project or tenant (refused exactly as
an id that does not exist, through the library and REST alike)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import ctxbase
from ctxbase.db.schema import metadata
from ctxbase.errors import CtxbaseError
from ctxbase.server import create_app
from ctxbase.store.base import Scope
from tests.quality.helpers import Chat, chat
from tests.security.test_references import DRIVER_WORDS

API = "/api/v1"
QUALITY_TABLES = ("quality_metrics", "contradictions", "repetition_loops", "citations")


def _fill(store: Any, c: Chat) -> None:
    """One record of each kind on ``c``."""
    first, second = c.messages[0].id, c.messages[1].id
    store.quality.add_metric(c.id, metric="coherence", value=0.4)
    store.quality.add_contradiction(c.id, first_message_id=first, second_message_id=second)
    store.quality.add_loop(c.id, pattern="again", message_ids=[first, second])
    store.quality.add_citation(c.id, message_id=second, source_reference="doc:1")


def _rows(store: ctxbase.Store, conversation_id: Any) -> dict[str, int]:
    with store.db.connect() as connection:
        return {
            name: connection.execute(
                select(func.count())
                .select_from(metadata.tables[name])
                .where(metadata.tables[name].c.conversation_id == conversation_id)
            ).scalar_one()
            for name in QUALITY_TABLES
        }


def test_deleting_a_conversation_deletes_its_quality_records(store: ctxbase.Store) -> None:
    doomed = chat(store, [("user", "the zebra invoice"), ("assistant", "zebra totals")])
    kept = chat(store, [("user", "the okapi invoice"), ("assistant", "okapi totals")])
    _fill(store, doomed)
    _fill(store, kept)
    assert _rows(store, doomed.id) == dict.fromkeys(QUALITY_TABLES, 1)
    store.conversations.delete(doomed.id)
    assert _rows(store, doomed.id) == dict.fromkeys(QUALITY_TABLES, 0)
    assert _rows(store, kept.id) == dict.fromkeys(QUALITY_TABLES, 1)
    hits = store.search("zebra invoice totals", kinds=["message"], mode="hybrid").hits
    assert {hit.item.conversation_id for hit in hits} <= {kept.id}
    with pytest.raises(ctxbase.NotFoundError):
        store.quality.list_metrics(doomed.id)


class World:
    """Tenants acme (projects alpha, beta) and globex; acme's writer adds records to its
    own conversation in alpha, by library or REST."""

    def __init__(self, store: ctxbase.Store, client: TestClient | None) -> None:
        store.tenants.create("acme")
        store.tenants.create("globex")
        self.acme = store.scoped(Scope(tenant="acme", server_admin=False, role="writer"))
        globex = store.scoped(Scope(tenant="globex", server_admin=False))
        self.acme.projects.create("alpha")
        self.acme.projects.create("beta")
        globex.projects.create("bravo")
        self.own = chat(self.acme, [("user", "hi"), ("assistant", "hello")], project="alpha")
        self.sibling = chat(self.acme, [("user", "hi")], project="alpha")
        self.beta = chat(self.acme, [("user", "hi")], project="beta")
        self.foreign = chat(globex, [("user", "hi")], project="bravo")
        self.client = client
        self.key = store.keys.create(tenant="acme", role="writer").key

    def add(self, kind: str, **body: Any) -> tuple[int, Any]:
        """(status, answer) of adding a ``kind`` record to acme's conversation."""
        if self.client is None:
            try:
                method = getattr(self.acme.quality, f"add_{kind}")
                return 201, method(self.own.id, project="alpha", **body)
            except CtxbaseError as error:
                return error.http_status, error.to_dict()
        answer = self.client.post(
            f"{API}/projects/alpha/conversations/{self.own.id}/quality/{kind}s",
            json={
                k: [str(i) for i in v] if isinstance(v, list) else str(v) for k, v in body.items()
            },
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


def _bodies(world: World, message_id: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    mine = world.own.messages[0].id
    return {
        "message_id": ("citation", {"message_id": message_id, "source_reference": "s"}),
        "second_message_id": (
            "contradiction",
            {"first_message_id": mine, "second_message_id": message_id},
        ),
        "message_ids": ("loop", {"pattern": "p", "message_ids": [mine, message_id]}),
    }


@pytest.mark.parametrize("field", ["message_id", "second_message_id", "message_ids"])
def test_a_message_not_of_the_conversation_reads_as_one_that_does_not_exist(
    world: World, field: str
) -> None:
    others = {
        "another tenant's": world.foreign.messages[0].id,
        "another project's": world.beta.messages[0].id,
        "another conversation's": world.sibling.messages[0].id,
        "a random": uuid.uuid4(),
    }
    refused = {}
    for what, message_id in others.items():
        kind, body = _bodies(world, message_id)[field]
        refused[what] = world.add(kind, **body)
    random = refused["a random"]
    assert random[0] == 422 and random[1]["error"]["code"] == "invalid_input"
    assert field in random[1]["error"]["message"]
    for what, answer in refused.items():
        assert answer == random, f"{what} id is answered differently: {answer} vs {random}"
        assert not any(word in str(answer).lower() for word in DRIVER_WORDS), answer
    assert _rows(world.acme, world.own.id) == dict.fromkeys(QUALITY_TABLES, 0)


def test_another_tenants_conversation_is_not_found(world: World) -> None:
    if world.client is None:
        with pytest.raises(ctxbase.NotFoundError):
            world.acme.quality.add_metric(world.foreign.id, metric="m", value=1, project="alpha")
        return
    answer = world.client.post(
        f"{API}/projects/alpha/conversations/{world.foreign.id}/quality/metrics",
        json={"metric": "m", "value": 1},
        headers={"Authorization": f"Bearer {world.key}"},
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_a_reader_may_list_but_not_add(store: ctxbase.Store) -> None:
    c = chat(store, [("user", "hi")])
    store.quality.add_metric(c.id, metric="m", value=1)
    reader = store.keys.create(role="reader").key
    settings = store.settings.model_copy(update={"auth": "required"})
    base = f"{API}/projects/default/conversations/{c.id}/quality"
    headers = {"X-API-Key": reader}
    with TestClient(create_app(store=store, settings=settings)) as client:
        listed = client.get(f"{base}/metrics", headers=headers)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 1
        for path in ("metrics", "loops/detect", "health"):
            refused = client.post(
                f"{base}/{path}", json={"metric": "m", "value": 1}, headers=headers
            )
            assert refused.status_code == 403, (path, refused.text)
