"""Delivery: signed webhooks with retries and dead letters, Redis, leases between workers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import ctxbase
from ctxbase.events.transports import verify_signature
from ctxbase.events.worker import DeliveryWorker
from tests.conftest import store_on
from tests.events.conftest import FAST_DELIVERY
from tests.events.receiver import webhook_receiver

SECRET = "a-shared-secret-for-tests"


def _drain(worker: DeliveryWorker, until: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "deliveries did not finish in time"
        if worker.run_once() == 0:
            time.sleep(0.02)


def test_webhooks_are_signed_in_order_and_filtered(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="deployer",
            event_types=["deploy.*"],
            delivery="webhook",
            target=f"{receiver.url}/ok",
            secret=SECRET,
        )
        for i in range(6):
            fast_store.events.append("deploy.step" if i % 2 == 0 else "chat", {"i": i})
        worker = DeliveryWorker(fast_store)
        try:
            _drain(worker, lambda: len(receiver.accepted()) == 3)
            _drain(worker, lambda: fast_store.subscriptions.get(sub.id).cursor == 6)
        finally:
            worker.stop()
        assert receiver.accepted() == [1, 3, 5]
        for delivery in receiver.deliveries:
            headers = {k.lower(): v for k, v in delivery.headers.items()}
            assert headers["x-ctxbase-signature"].startswith("sha256=")
            assert verify_signature(
                SECRET,
                headers["x-ctxbase-timestamp"],
                delivery.body,
                headers["x-ctxbase-signature"],
            )
            assert not verify_signature(
                "another-secret-entirely",
                headers["x-ctxbase-timestamp"],
                delivery.body,
                headers["x-ctxbase-signature"],
            )
            assert json.loads(delivery.body)["event_type"] == "deploy.step"
            assert headers["x-ctxbase-subscription"] == str(sub.id)
            assert SECRET not in json.dumps(headers) and SECRET.encode() not in delivery.body


def test_a_receiver_failing_twice_gets_the_event(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/flaky/2", secret=SECRET
        )
        fast_store.events.append("one")
        fast_store.events.append("two")
        worker = DeliveryWorker(fast_store)
        try:
            _drain(worker, lambda: receiver.accepted() == [1, 2])
        finally:
            worker.stop()
        attempts = [(d.sequence, d.accepted) for d in receiver.deliveries]
        assert attempts == [(1, False), (1, False), (1, True), (2, False), (2, False), (2, True)]
        state = fast_store.subscriptions.get(sub.id)
        assert (state.cursor, state.attempts, state.last_error) == (2, 0, None)
        assert fast_store.subscriptions.dead_letters(sub.id).items == []


def test_a_receiver_always_failing_ends_in_dead_letters(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/down", secret=SECRET
        )
        healthy = fast_store.subscriptions.create(
            agent_id="b", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        fast_store.events.append("one")
        fast_store.events.append("two")
        worker = DeliveryWorker(fast_store)
        try:
            _drain(worker, lambda: fast_store.subscriptions.get(sub.id).cursor == 2)
            _drain(worker, lambda: len(receiver.accepted(str(healthy.id))) == 2)
        finally:
            worker.stop()
        letters = fast_store.subscriptions.dead_letters(sub.id).items
        assert [(d.sequence, d.attempts) for d in letters] == [(1, 3), (2, 3)]
        assert "503" in letters[0].last_error
        tries = [d.sequence for d in receiver.deliveries if d.path == "/down"]
        assert tries == [1, 1, 1, 2, 2, 2]  # in order: 2 waits until 1 is given up


def test_retry_waits_for_its_backoff(fast_store: ctxbase.Store) -> None:
    slow = fast_store.settings.model_copy(update={"delivery_backoff_seconds": 60.0})
    with webhook_receiver() as receiver:
        fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/flaky/1", secret=SECRET
        )
        fast_store.events.append("one")
        view = fast_store.scoped(fast_store.scope)
        view.settings = slow
        worker = DeliveryWorker(view)
        try:
            worker.run_once()
            worker.run_once()  # too early: the retry is a minute away
        finally:
            worker.stop()
        assert [(d.sequence, d.accepted) for d in receiver.deliveries] == [(1, False)]


def test_two_workers_never_deliver_for_one_subscription_at_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A lease long enough that no worker stalls past it on a busy machine: one that did
    # would count as dead, and its events would rightly be delivered again.
    options = {**FAST_DELIVERY, "delivery_lease_seconds": 60.0}
    for fast_store in store_on(backend, tmp_path, request, **options):
        _deliver_with_three_workers(fast_store)


def _deliver_with_three_workers(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver:
        receiver.slow_seconds = 0.005
        subs = [
            fast_store.subscriptions.create(
                agent_id=f"agent-{i}",
                delivery="webhook",
                target=f"{receiver.url}/ok",
                secret=SECRET,
            )
            for i in range(3)
        ]
        fast_store.events.append_many([{"event_type": "e", "data": i} for i in range(40)])
        workers = [DeliveryWorker(fast_store) for _ in range(3)]
        for worker in workers:
            worker.start()
        try:
            for sub in subs:
                receiver.wait_for(40, str(sub.id))
        finally:
            for worker in workers:
                worker.stop()
        assert receiver.most_in_flight == 1
        for sub in subs:
            # No crash, so no repeat: exactly once each, in order.
            assert receiver.accepted(str(sub.id)) == list(range(1, 41))


def test_server_worker_delivers_pushed_events(fast_store: ctxbase.Store) -> None:
    from ctxbase.server import create_app
    from tests.live import live_server

    with webhook_receiver() as receiver, live_server(create_app(store=fast_store)) as url:
        with ctxbase.Client(url) as client:
            client.subscriptions.create(
                agent_id="a", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
            )
            client.events.append("hello", {"n": 1})
            receiver.wait_for(1)


def test_redis_delivery(fast_store: ctxbase.Store) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(fast_store.settings.redis_url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {fast_store.settings.redis_url}: {error}")
    channel = f"ctxbase-test-{uuid.uuid4().hex}"
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    try:
        fast_store.subscriptions.create(agent_id="r", delivery="redis", target=channel)
        fast_store.events.append("cache.invalidate", {"key": "users"})
        fast_store.events.append("cache.invalidate", {"key": "orders"})
        worker = DeliveryWorker(fast_store)
        try:
            assert worker.run_once() == 2
        finally:
            worker.stop()
        received = []
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message and message["type"] == "message":
                received.append(json.loads(message["data"]))
        assert [(m["sequence"], m["data"]["key"]) for m in received] == [
            (1, "users"),
            (2, "orders"),
        ]
    finally:
        pubsub.close()
        client.close()


def test_redis_down_is_retried_not_lost(fast_store: ctxbase.Store) -> None:
    view = fast_store.scoped(fast_store.scope)
    view.settings = fast_store.settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    sub = view.subscriptions.create(agent_id="r", delivery="redis", target="nowhere")
    view.events.append("x")
    worker = DeliveryWorker(view)
    try:
        assert worker.run_once() == 0
    finally:
        worker.stop()
    state = view.subscriptions.get(sub.id)
    assert (state.cursor, state.attempts) == (0, 1)
    assert "Redis" in (state.last_error or "")


def test_stopping_a_worker_mid_run_keeps_the_rest_owed(fast_store: ctxbase.Store) -> None:
    with webhook_receiver() as receiver:
        receiver.slow_seconds = 0.02
        sub = fast_store.subscriptions.create(
            agent_id="a", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        fast_store.events.append_many([{"event_type": "e"} for _ in range(50)])
        worker = DeliveryWorker(fast_store)
        worker.start()
        receiver.wait_for(5)
        worker.stop()
        cursor = fast_store.subscriptions.get(sub.id).cursor
        assert 5 <= cursor < 50
        assert sorted(set(receiver.accepted())) == list(range(1, len(set(receiver.accepted())) + 1))
        again = DeliveryWorker(fast_store)
        threading.Thread(target=again.run_once).run()
        again.stop()
        assert sorted(set(receiver.accepted())) == list(range(1, 51))


def test_stopping_passes_unwanted_events_but_keeps_wanted_ones_owed(
    fast_store: ctxbase.Store,
) -> None:
    with webhook_receiver() as receiver:
        sub = fast_store.subscriptions.create(
            agent_id="a",
            event_types=["wanted"],
            delivery="webhook",
            target=f"{receiver.url}/ok",
            secret=SECRET,
        )
        for event_type in ["wanted", "other", "other", "wanted", "other"]:
            fast_store.events.append(event_type)
        worker = DeliveryWorker(fast_store)
        webhook = worker._transports["webhook"]
        send = webhook.send

        def send_then_stop(*args: object) -> None:
            send(*args)  # type: ignore[arg-type]
            worker.request_stop()  # as a SIGTERM during the first delivery would

        webhook.send = send_then_stop  # type: ignore[method-assign]
        try:
            assert worker.run_once() == 1
        finally:
            worker.stop()
        assert receiver.accepted() == [1]
        assert fast_store.subscriptions.get(sub.id).cursor == 3  # 2 and 3 passed, 4 owed
        again = DeliveryWorker(fast_store)
        try:
            assert again.run_once() == 1
        finally:
            again.stop()
        assert receiver.accepted() == [1, 4]
        assert fast_store.subscriptions.get(sub.id).cursor == 5
