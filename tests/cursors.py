"""Material for the cursor tests: a store where every list has a second page in two
projects of each of two tenants (the same project names in both), and cursors that no
list may accept.

The lists themselves are found by walking the interface under test (the OpenAPI document,
or the library's methods with a ``cursor`` parameter), never listed here.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

import ctxbase
from ctxbase.db.schema import new_id, utcnow
from ctxbase.records import Event
from ctxbase.store.base import Scope
from ctxbase.store.subscriptions import dead_letters_table

PROJECTS = ("default", "other")
#: A second tenant, with projects named as the first tenant's: a cursor binds its tenant,
#: not only its project's name.
OTHER_TENANT = "acme"


@dataclass(frozen=True)
class Parents:
    """The records a project's nested lists hang under (their path parameters)."""

    conversation_id: uuid.UUID
    subscription_id: uuid.UUID

    def value_of(self, parameter: str) -> Any:
        """The value of a list's parameter naming a parent record; KeyError if unknown."""
        return {"conversation_id": self.conversation_id, "subscription_id": self.subscription_id}[
            parameter
        ]


def seed_every_list(store: ctxbase.Store) -> dict[str, Parents]:
    """Two of everything, in each of :data:`PROJECTS`: with ``limit=1`` every list in every
    project has a next page. Returns each project's parent records."""
    store.tenants.create(OTHER_TENANT, name="Acme")
    store.keys.create(role="reader", name="first")
    store.keys.create(role="reader", name="second")
    store.projects.create(slug="other", name="Other")
    for kind in ("migration", "reembed"):
        _record_job(store, kind)
    return {project: _seed_project(store, project) for project in PROJECTS}


def seed_the_other_tenant(store: ctxbase.Store) -> dict[str, Parents]:
    """The same for :data:`OTHER_TENANT` (made by :func:`seed_every_list`): its projects of
    :data:`PROJECTS` and two keys (and so two audit entries) of its own, as one of its
    admins would make them. Returns each of its projects' parent records."""
    theirs = store.scoped(Scope(tenant=OTHER_TENANT, server_admin=False))
    for project in PROJECTS:
        theirs.projects.create(slug=project, name=project.title())
    theirs.keys.create(role="reader", name="first")
    theirs.keys.create(role="reader", name="second")
    return {project: _seed_project(theirs, project) for project in PROJECTS}


def _record_job(store: ctxbase.Store, kind: str) -> None:
    from ctxbase.store.jobs import record_job
    from ctxbase.transfer.report import MigrationReport, Progress

    report = MigrationReport(
        id=new_id(),
        kind=kind,  # type: ignore[arg-type]
        status="completed",
        source={},
        target={},
        tables=[],
        options={},
        progress=Progress(percent=100.0),
        created_at=utcnow(),
    )
    record_job(store.db, report, {"home_copy": True})


def _seed_project(store: ctxbase.Store, project: str) -> Parents:
    conversation = store.conversations.create(title="first", project=project)
    store.conversations.create(title="second", project=project)
    one, two = store.messages.append_many(
        conversation.id,
        [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
        project=project,
    )
    quality = store.quality
    for name in ("a", "b"):
        quality.add_metric(conversation.id, metric=name, value=1.0, project=project)
        quality.add_contradiction(
            conversation.id,
            first_message_id=one.id,
            second_message_id=two.id,
            description=name,
            project=project,
        )
        quality.add_loop(conversation.id, pattern=name, message_ids=[one.id], project=project)
        quality.add_citation(
            conversation.id, message_id=one.id, source_reference=name, project=project
        )
    for name in ("a", "b"):
        store.contexts.add(name, f"note {name}", project=project)
        store.memories.add(f"memory {name}", project=project)
        store.state.put(name, {"step": 1}, namespace="agents/coder", project=project)
    store.subscriptions.create(agent_id="poller", project=project)
    given_up = [store.events.append(kind, project=project) for kind in ("one", "two")]
    # Created after its events, it owes nothing: no delivery worker of a live server
    # touches it while the dead letters are written.
    pusher = store.subscriptions.create(
        agent_id="pusher",
        delivery="webhook",
        target="http://127.0.0.1:9/never",
        secret="a webhook signing secret",
        project=project,
    )
    _write_dead_letters(store, pusher.id, given_up)
    return Parents(conversation_id=conversation.id, subscription_id=pusher.id)


def _write_dead_letters(
    store: ctxbase.Store, subscription_id: uuid.UUID, events: list[Event]
) -> None:
    """``events`` as dead letters of the subscription, the rows the delivery worker writes
    when it gives up."""
    rows = [
        {
            "id": new_id(),
            "subscription_id": subscription_id,
            "event_id": event.id,
            "sequence": event.sequence,
            "attempts": 3,
            "last_error": "refused",
            "created_at": utcnow(),
        }
        for event in events
    ]
    with store.db.connect(write=True) as connection:
        connection.execute(insert(dead_letters_table), rows)


# --- cursors no list may accept -------------------------------------------------------------


def encode(value: Any) -> str:
    """``value`` as JSON in URL-safe base64, the way cursors are written."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def body_of(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def garbage(own: str, foreign: dict[str, str]) -> list[tuple[str, str]]:
    """(what it is, cursor) pairs that a list whose real cursor is ``own`` must refuse;
    ``foreign`` holds real cursors of other lists or of the same list elsewhere."""
    cases = [(f"real cursor {where}", cursor) for where, cursor in foreign.items()]
    cases += _truncated(own) + _crafted(body_of(own)) + _not_cursors()
    return cases


def _truncated(cursor: str) -> list[tuple[str, str]]:
    return [(f"truncated to {n}", cursor[:n]) for n in (1, 5, len(cursor) // 2, len(cursor) - 1)]


def _crafted(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A real cursor's body with its key replaced by values of the wrong type or range
    for every list, and with its envelope altered."""
    width = len(body["k"])
    keys: dict[str, list[Any]] = {
        "a huge number": [10**40] * width,
        "a negative number": [-1] * width,
        "a float": [1.5] * width,
        "a bool": [True] * width,
        "null": [None] * width,
        "a list": [[1, 2]] * width,
        "an object": [{"id": 1}] * width,
        "a NUL character": ["a\x00b"] * width,
        "a lone surrogate": ["\ud800"] * width,
        "too long a text": ["x" * 600] * width,
        "one part too many": [*body["k"], body["k"][0]],
        "no part": [],
    }
    cases = [(f"key of {what}", encode({**body, "k": key})) for what, key in keys.items()]
    envelopes: dict[str, Any] = {
        "a newer version": {**body, "v": 2},
        "a version as float": {**body, "v": 1.0},
        "a version as text": {**body, "v": "1"},
        "no version": {k: v for k, v in body.items() if k != "v"},
        "an extra field": {**body, "x": 1},
        "another list's name": {**body, "l": "elsewhere"},
        "another scope": {**body, "s": "0" * len(body["s"])},
        "the older format (the bare key)": body["k"],
        "a key as an object": {**body, "k": {"id": body["k"][0]}},
    }
    cases += [(f"cursor with {what}", encode(value)) for what, value in envelopes.items()]
    return cases


def _not_cursors() -> list[tuple[str, str]]:
    noise = random.Random(7)
    cases = [
        (f"{n} random bytes", base64.urlsafe_b64encode(noise.randbytes(n)).decode())
        for n in (1, 16, 100, 700)
    ]
    raw_json = {
        "a JSON string": '"abc"',
        "a JSON number": "12",
        "JSON null": "null",
        "an infinite number": "[1e999]",
        "a number of 5000 digits": "[" + "9" * 5000 + "]",
        "NaN": "[NaN]",
        "deep nesting": "[" * 600,
        "not UTF-8": "\udcff",
    }
    cases += [
        (what, base64.urlsafe_b64encode(text.encode(errors="surrogateescape")).decode())
        for what, text in raw_json.items()
    ]
    cases += [
        ("non-ASCII text", "curs\u00e9r\u2603"),
        ("spaces", "a b c"),
        ("padding only", "===="),
        ("standard base64 alphabet", "ab+/cd"),
        ("a UUID", str(uuid.uuid4())),
        ("a very long text", "A" * 5000),
    ]
    return cases
