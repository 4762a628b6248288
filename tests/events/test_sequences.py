"""Sequences are the contract: gapless per project, handed out in commit order, also with
many concurrent writers (threads, and processes on PostgreSQL)."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable

import pytest

import ctxbase
from tests.conftest import open_store


def _watch_for_gaps(store: ctxbase.Store, total: int, stop: threading.Event) -> list[str]:
    """Read the stream while it is written; a number seen after a higher one would be a
    sequence filled in late. Returns the problems seen."""
    problems: list[str] = []
    seen = 0
    while seen < total and not stop.is_set():
        page = store.events.list(after=seen, limit=1000)
        numbers = [e.sequence for e in page.items]
        if numbers and numbers != list(range(seen + 1, seen + 1 + len(numbers))):
            problems.append(f"after {seen} read {numbers[:5]}…")
            return problems
        seen = numbers[-1] if numbers else seen
        time.sleep(0.002)  # a reader polling, not a loop starving the writers
    return problems


def _run_writers(count: int, write: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            write(index)
        except BaseException as error:  # reported below, not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_eight_threads_thousand_appends_each(store: ctxbase.Store) -> None:
    writers, per_writer = 8, 1000
    total = writers * per_writer
    stop = threading.Event()
    problems: list[str] = []
    reader = threading.Thread(
        target=lambda: problems.extend(_watch_for_gaps(store, total, stop)), daemon=True
    )
    reader.start()

    def write(index: int) -> None:
        for n in range(per_writer):
            store.events.append("tick", {"writer": index, "n": n})

    try:
        _run_writers(writers, write)
    finally:
        reader.join(timeout=60)
        stop.set()
    assert not problems
    assert store.events.last_sequence() == total
    numbers, per_writer_order = [], {i: [] for i in range(writers)}
    page = store.events.list(after=0, limit=1000)
    while True:
        for event in page.items:
            numbers.append(event.sequence)
            per_writer_order[event.data["writer"]].append(event.data["n"])
        if page.next_after is None:
            break
        page = store.events.list(after=page.next_after, limit=1000)
    assert numbers == list(range(1, total + 1))
    # Each writer's events appear in the order it appended them.
    assert all(order == list(range(per_writer)) for order in per_writer_order.values())


def test_batches_and_conflicts_leave_no_gaps(store: ctxbase.Store) -> None:
    def write(index: int) -> None:
        for _ in range(50):
            store.events.append_many([{"event_type": "pair"}, {"event_type": "pair"}])
            # mostly conflicts: rolled back, their numbers given back
            with contextlib.suppress(ctxbase.errors.ConflictError):
                store.events.append("guess", expected_sequence=index)

    _run_writers(4, write)
    last = store.events.last_sequence()
    page = store.events.list(after=0, limit=1000)
    assert [e.sequence for e in page.items] == list(range(1, last + 1))
    assert last >= 400


def _append_in_process(url: str, secret_key: str, count: int) -> None:
    with open_store(url, secret_key=secret_key, auto_migrate=False) as store:
        for n in range(count):
            store.events.append("from-process", {"n": n})


def test_four_processes_on_postgres(postgres: object, postgres_template: str) -> None:
    from tests.postgres import PostgresServer

    assert isinstance(postgres, PostgresServer)
    per_process = 1000
    with postgres.database(template=postgres_template) as url, open_store(url) as store:
        context = multiprocessing.get_context("spawn")
        key = store.settings.secret_key.get_secret_value() if store.settings.secret_key else ""
        processes = [
            context.Process(target=_append_in_process, args=(url, key, per_process))
            for _ in range(4)
        ]
        stop = threading.Event()
        problems: list[str] = []
        reader = threading.Thread(
            target=lambda: problems.extend(_watch_for_gaps(store, 4 * per_process, stop)),
            daemon=True,
        )
        reader.start()
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=300)
            assert process.exitcode == 0
        reader.join(timeout=60)
        stop.set()
        assert not problems
        assert store.events.last_sequence() == 4 * per_process
        sequences: list[int] = []
        after = 0
        while True:
            page = store.events.list(after=after, limit=1000)
            sequences += [e.sequence for e in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        assert sequences == list(range(1, 4 * per_process + 1))


def test_a_failed_group_fails_its_callers_and_the_next_group_proceeds(
    store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctxbase.errors import DatabaseBusyError
    from ctxbase.store.event_writer import EventWriter

    real = EventWriter._write_group
    calls = {"n": 0}

    def failing_once(self: EventWriter, group: list) -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 1:
            raise DatabaseBusyError("the disk is full")
        return real(self, group)

    monkeypatch.setattr(EventWriter, "_write_group", failing_once)
    with pytest.raises(DatabaseBusyError):
        store.events.append("lost")
    assert store.events.last_sequence() == 0  # nothing of the failed group was written
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for _ in range(20):
                store.events.append("kept", {"writer": index})
        except BaseException as error:
            errors.append(error)

    _run_writers(4, write)
    assert not errors
    assert [e.sequence for e in store.events.list(limit=1000).items] == list(range(1, 81))
