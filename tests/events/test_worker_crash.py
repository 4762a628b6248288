"""A delivery worker killed with SIGKILL mid-delivery, then restarted: every event reaches
every matching subscription at least once; none is skipped."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from tests.events.receiver import Receiver, webhook_receiver

if TYPE_CHECKING:
    from ctxbase.store import Store

SECRET = "a-shared-secret-for-tests"
EVENTS = 150


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CTXBASE_DATABASE_URL": url,
        "CTXBASE_DELIVERY_LEASE_SECONDS": "1",
        "CTXBASE_EVENTS_POLL_INTERVAL": "0.1",
        "CTXBASE_DELIVERY_BACKOFF_SECONDS": "0.05",
    }
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ctxbase", "worker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _kill_after(
    process: subprocess.Popen[bytes], receiver: Receiver, deliveries: int, log: Path
) -> None:
    deadline = time.monotonic() + 60
    while len(receiver.accepted()) < deliveries:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the worker delivered too little"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _wait_for_cursors(
    store: Store,
    subscriptions: list[uuid.UUID],
    cursor: int,
    worker: subprocess.Popen[bytes],
    log: Path,
) -> None:
    deadline = time.monotonic() + 60
    while any(store.subscriptions.get(s).cursor < cursor for s in subscriptions):
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the cursors stopped short"
        time.sleep(0.05)


def test_sigkill_then_restart_loses_nothing(persistent_database_url: str, tmp_path: Path) -> None:
    from tests.conftest import open_store

    rng = random.Random(7)
    log = tmp_path / "worker.log"
    with open_store(persistent_database_url) as store, webhook_receiver() as receiver:
        receiver.slow_seconds = 0.003
        everything = store.subscriptions.create(
            agent_id="all", delivery="webhook", target=f"{receiver.url}/ok", secret=SECRET
        )
        even = store.subscriptions.create(
            agent_id="even",
            event_types=["even"],
            delivery="webhook",
            target=f"{receiver.url}/flaky/1",  # and a failure before each success
            secret=SECRET,
        )
        store.events.append_many(
            [{"event_type": "even" if i % 2 == 0 else "odd", "data": i} for i in range(EVENTS)]
        )
        expected = {
            str(everything.id): set(range(1, EVENTS + 1)),
            str(even.id): set(range(1, EVENTS + 1, 2)),
        }
        total = sum(len(s) for s in expected.values())
        kills = sorted(rng.sample(range(10, total - 10), 3))
        for point in kills:  # kill at three points, each time restarting
            worker = _start_worker(persistent_database_url, log)
            _kill_after(worker, receiver, point, log)
        final = _start_worker(persistent_database_url, log)
        try:
            for subscription, sequences in expected.items():
                receiver.wait_for(len(sequences), subscription, timeout=120)
            # the cursor passes the unwanted events after the last delivery, not with it
            _wait_for_cursors(store, [everything.id, even.id], EVENTS, final, log)
        finally:
            final.send_signal(signal.SIGTERM)
            assert final.wait(timeout=30) == 0, log.read_text()
        for subscription, sequences in expected.items():
            got = receiver.accepted(subscription)
            assert set(got) == sequences, f"missing {sorted(sequences - set(got))[:10]}"
            repeats = sum(n - 1 for n in Counter(got).values())
            assert repeats <= len(kills)  # at most the event in flight at each kill
        assert store.subscriptions.get(everything.id).cursor == EVENTS
        assert store.subscriptions.get(even.id).cursor == EVENTS
