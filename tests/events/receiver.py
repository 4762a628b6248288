"""A webhook receiver on a loopback port, in a thread of the test process.

Each path behaves as told: ``/ok`` takes everything, ``/flaky/N`` fails each event N times
before taking it, ``/down`` always fails. Every request is recorded."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    subscription: str
    sequence: int
    headers: dict[str, str]
    body: bytes
    accepted: bool


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: int = 0
    slow_seconds: float = 0.0

    def accepted(self, subscription: str | None = None) -> list[int]:
        with self.lock:
            return [
                d.sequence
                for d in self.deliveries
                if d.accepted and subscription in (None, d.subscription)
            ]

    def wait_for(self, count: int, subscription: str | None = None, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(set(self.accepted(subscription))) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(set(self.accepted(subscription)))} of {count} deliveries arrived"
                )
            time.sleep(0.02)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver: Receiver
    failures: defaultdict[tuple[str, int], int] = defaultdict(int)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sequence = int(json.loads(body)["sequence"])
            subscription = self.headers.get("X-Ctxbase-Subscription", "")
            with receiver.lock:
                receiver.in_flight[subscription] += 1
                receiver.most_in_flight = max(
                    receiver.most_in_flight, receiver.in_flight[subscription]
                )
            time.sleep(receiver.slow_seconds)
            accepted = self._decide(sequence)
            with receiver.lock:
                receiver.in_flight[subscription] -= 1
                receiver.deliveries.append(
                    Delivery(self.path, subscription, sequence, dict(self.headers), body, accepted)
                )
            self.send_response(200 if accepted else 503)
            self.end_headers()

        def _decide(self, sequence: int) -> bool:
            if self.path == "/down":
                return False
            if self.path.startswith("/flaky/"):
                with receiver.lock:
                    failures[(self.path, sequence)] += 1
                    return failures[(self.path, sequence)] > int(self.path.rsplit("/", 1)[1])
            return True

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
