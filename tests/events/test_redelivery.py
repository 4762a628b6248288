"""Retrying dead letters: each sent once more, now, as the worker sends it; delivered ones
leave the dead letters, failed ones stay with one more attempt counted and the new error."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

import ctxbase
from ctxbase.events import redelivery
from ctxbase.events.transports import verify_signature
from ctxbase.events.worker import DeliveryWorker
from ctxbase.records.events import RETRY_LIMIT
from ctxbase.server import create_app
from tests.events.receiver import webhook_receiver
from tests.events.test_delivery import _drain
from tests.events.test_poison import _corrupt

SECRET = "a-shared-secret-for-tests"
API = "/api/v1/projects/default"


def _dead_lettered(store: ctxbase.Store, subscription_id: uuid.UUID, count: int) -> None:
    """Run a worker until ``count`` events went to the subscription's dead letters."""
    worker = DeliveryWorker(store)
    try:
        _drain(
            worker, lambda: len(store.subscriptions.dead_letters(subscription_id).items) == count
        )
    finally:
        worker.stop()


def test_a_receiver_back_up_gets_its_dead_letters_on_retry(fast_store: ctxbase.Store) -> None:
    # /flaky/4 refuses each event four times: the worker's three attempts, then one retry.
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/flaky/4", secret=SECRET
        )
        first = fast_store.events.append("deploy.started", {"n": 1})
        fast_store.events.append("deploy.finished", {"n": 2})
        _dead_lettered(fast_store, sub.id, 2)
        letters = fast_store.subscriptions.dead_letters(sub.id).items
        assert [(d.sequence, d.attempts) for d in letters] == [(1, 3), (2, 3)]
        cursor = fast_store.subscriptions.get(sub.id).cursor

        once = fast_store.subscriptions.retry_dead_letters(sub.id, ids=[letters[0].id])
        assert once.delivered == [] and [f.id for f in once.failed] == [letters[0].id]
        assert "503" in once.failed[0].error and once.remaining == 2
        kept = fast_store.subscriptions.dead_letters(sub.id).items
        assert [(d.sequence, d.attempts) for d in kept] == [(1, 4), (2, 3)]
        assert "503" in kept[0].last_error

        every = fast_store.subscriptions.retry_dead_letters(str(sub.id))
        assert every.delivered == [letters[0].id]
        assert [f.id for f in every.failed] == [letters[1].id] and every.remaining == 1
        last = fast_store.subscriptions.retry_dead_letters(sub.id)
        assert (last.delivered, last.failed, last.remaining) == ([letters[1].id], [], 0)
        assert fast_store.subscriptions.dead_letters(sub.id).items == []
        assert fast_store.subscriptions.retry_dead_letters(sub.id).remaining == 0

        assert receiver.accepted(str(sub.id)) == [1, 2]
        delivered = next(d for d in receiver.deliveries if d.accepted and d.sequence == 1)
        headers = {k.lower(): v for k, v in delivered.headers.items()}
        assert verify_signature(
            SECRET, headers["x-ctxbase-timestamp"], delivered.body, headers["x-ctxbase-signature"]
        )
        assert json.loads(delivered.body) == json.loads(first.model_dump_json())
        assert headers["x-ctxbase-event-id"] == str(first.id)
        # Beside delivery, not in it: the cursor stayed where the worker left it.
        assert fast_store.subscriptions.get(sub.id).cursor == cursor == 2


def test_an_event_that_cannot_be_read_stays_dead_lettered_saying_why(
    fast_store: ctxbase.Store,
) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        bad = fast_store.events.append("two")
        _corrupt(fast_store, bad.id, metadata=["not", "an", "object"])
        _dead_lettered(fast_store, sub.id, 1)
        retried = fast_store.subscriptions.retry_dead_letters(sub.id)
        assert retried.delivered == [] and retried.remaining == 1
        assert "ValidationError" in retried.failed[0].error
        letter = fast_store.subscriptions.dead_letters(sub.id).items[0]
        assert (letter.event_id, letter.attempts) == (bad.id, 2)
        assert letter.last_error == retried.failed[0].error
        assert receiver.deliveries == []


def test_a_redis_retry_goes_through_the_redis_transport(fast_store: ctxbase.Store) -> None:
    view = fast_store.scoped(fast_store.scope)
    view.settings = fast_store.settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    sub = view.subscriptions.create(agent_id="r", delivery="redis", target="nowhere")
    view.events.append("x")
    _dead_lettered(view, sub.id, 1)
    retried = view.subscriptions.retry_dead_letters(sub.id)
    assert "Redis" in retried.failed[0].error
    assert view.subscriptions.dead_letters(sub.id).items[0].attempts == 4


def test_what_cannot_be_retried_is_refused_before_anything_is_sent(
    fast_store: ctxbase.Store,
) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/down", secret=SECRET
        )
        other = fast_store.subscriptions.create(
            agent_id="b", delivery="webhook", target=f"{receiver.url}/down", secret=SECRET
        )
        fast_store.events.append("one")
        _dead_lettered(fast_store, sub.id, 1)
        _dead_lettered(fast_store, other.id, 1)
        sent = len(receiver.deliveries)
        theirs = fast_store.subscriptions.dead_letters(other.id).items[0].id
        unknown = uuid.uuid4()
        with pytest.raises(ctxbase.NotFoundError) as absent:
            fast_store.subscriptions.retry_dead_letters(sub.id, ids=[theirs, unknown])
        assert str(theirs) in str(absent.value) and str(unknown) in str(absent.value)
        for ids in ([], [uuid.uuid4() for _ in range(RETRY_LIMIT + 1)], ["not-an-id"]):
            with pytest.raises(ctxbase.InvalidInputError):
                fast_store.subscriptions.retry_dead_letters(sub.id, ids=ids)
        with pytest.raises(ctxbase.NotFoundError):
            fast_store.subscriptions.retry_dead_letters(uuid.uuid4())
        polled = fast_store.subscriptions.create(agent_id="p")
        with pytest.raises(ctxbase.InvalidInputError, match="poll"):
            fast_store.subscriptions.retry_dead_letters(polled.id)
        assert len(receiver.deliveries) == sent
        assert fast_store.subscriptions.dead_letters(sub.id).items[0].attempts == 3


def test_dead_letters_are_retried_over_rest(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver, TestClient(create_app(store=fast_store)) as http:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/flaky/3", secret=SECRET
        )
        fast_store.events.append("one")
        fast_store.events.append("two")
        _dead_lettered(fast_store, sub.id, 2)
        url = f"{API}/subscriptions/{sub.id}/dead-letters/retry"
        first = fast_store.subscriptions.dead_letters(sub.id).items[0]
        named = http.post(url, json={"ids": [str(first.id)]})
        assert named.status_code == 200, named.text
        assert named.json() == {"delivered": [str(first.id)], "failed": [], "remaining": 1}
        rest = http.post(url)  # no body: the oldest ones
        assert rest.status_code == 200 and rest.json()["remaining"] == 0
        assert receiver.accepted(str(sub.id)) == [1, 2]
        assert http.post(url, json={"ids": []}).status_code == 422
        assert http.post(url, json={"ids": [str(uuid.uuid4())]}).status_code == 404
        assert http.post(url, json={"idz": None}).json()["error"]["code"] == "invalid_input"


def test_a_retry_out_of_time_leaves_the_rest_untouched(
    fast_store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/flaky/3", secret=SECRET
        )
        fast_store.events.append("one")
        _dead_lettered(fast_store, sub.id, 1)
        sent = len(receiver.deliveries)
        monkeypatch.setattr(redelivery, "RETRY_SECONDS", -1.0)  # spent before the first
        retried = fast_store.subscriptions.retry_dead_letters(sub.id)
        assert (retried.delivered, retried.failed, retried.remaining) == ([], [], 1)
        assert len(receiver.deliveries) == sent
        assert fast_store.subscriptions.dead_letters(sub.id).items[0].attempts == 3
