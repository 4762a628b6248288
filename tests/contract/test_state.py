"""Agent state: compare-and-set on version, namespaces, TTL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

import ctxbase
from ctxbase.errors import InvalidInputError, NotFoundError, VersionConflictError


def test_put_get_versions(api: Any) -> None:
    first = api.state.put("plan", {"steps": ["a", "b"]}, namespace="agents/coder")
    assert (first.version, first.value, first.namespace) == (
        1,
        {"steps": ["a", "b"]},
        "agents/coder",
    )
    second = api.state.put("plan", {"steps": ["a"]}, namespace="agents/coder")
    assert second.version == 2
    assert api.state.get("plan", namespace="agents/coder") == second
    for value in (None, 3, 2.5, "text", [1, [2]], True):
        assert api.state.put("any", value).value == value


def test_compare_and_set(api: Any) -> None:
    api.state.put("counter", 0, expected_version=0)
    with pytest.raises(VersionConflictError):
        api.state.put("counter", 0, expected_version=0)  # exists already
    api.state.put("counter", 1, expected_version=1)
    with pytest.raises(VersionConflictError) as caught:
        api.state.put("counter", 99, expected_version=1)
    assert caught.value.details["current_version"] == 2
    assert api.state.get("counter").value == 1
    with pytest.raises(VersionConflictError):
        api.state.put("missing", 1, expected_version=3)
    with pytest.raises(VersionConflictError):
        api.state.delete("counter", expected_version=1)
    api.state.delete("counter", expected_version=2)
    with pytest.raises(NotFoundError):
        api.state.get("counter")
    with pytest.raises(NotFoundError):
        api.state.delete("counter")


def test_concurrent_compare_and_set_loses_no_increment(api: Any) -> None:
    api.state.put("hits", 0)
    failures: list[BaseException] = []

    def increment(times: int) -> None:
        try:
            for _ in range(times):
                while True:
                    entry = api.state.get("hits")
                    try:
                        api.state.put("hits", entry.value + 1, expected_version=entry.version)
                        break
                    except VersionConflictError:
                        continue
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=increment, args=(10,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    final = api.state.get("hits")
    assert final.value == 40 and final.version == 41


def test_list_by_namespace_prefix(api: Any) -> None:
    for namespace, key in [("a", "k1"), ("a/b", "k2"), ("a/b/c", "k3"), ("ab", "k4"), ("", "k5")]:
        api.state.put(key, key, namespace=namespace)
    listed = api.state.list(namespace="a")
    assert [(e.namespace, e.key) for e in listed.items] == [
        ("a", "k1"),
        ("a/b", "k2"),
        ("a/b/c", "k3"),
    ]
    assert len(api.state.list().items) == 5
    page = api.state.list(namespace="a", limit=2)
    rest = api.state.list(namespace="a", limit=2, cursor=page.next_cursor)
    assert [e.key for e in page.items + rest.items] == ["k1", "k2", "k3"]
    assert rest.next_cursor is None


def test_ttl(api: Any) -> None:
    entry = api.state.put("lease", "me", ttl_seconds=1)
    assert entry.expires_at is not None
    time.sleep(1.1)
    with pytest.raises(NotFoundError):
        api.state.get("lease")
    assert api.state.list().items == []
    again = api.state.put("lease", "you", expected_version=0)  # expired counts as absent
    assert again.version == 2  # versions are never reused


def test_bad_state_input(api: Any) -> None:
    for namespace, key in [("a//b", "k"), ("ok", ""), ("ok", "has space"), ("bad ns", "k")]:
        with pytest.raises((InvalidInputError, NotFoundError)):
            api.state.put(key, 1, namespace=namespace)
    with pytest.raises(InvalidInputError):
        api.state.put("k", {"nan": float("inf")})
    assert api.state.list().items == []


def test_compare_and_set_waits_for_a_writer_of_the_entry(store: ctxbase.Store) -> None:
    """A compare-and-set made while another transaction is writing the entry waits for it,
    then succeeds against the version that writer made (it does not fail early)."""
    store.state.put("turn", "first")
    holding, waits_seen = threading.Event(), []

    def writer_holding_the_entry() -> None:
        with store.db.connect(write=True) as connection:
            connection.execute(
                text("UPDATE state_entries SET version = version + 1 WHERE key = 'turn'")
            )
            holding.set()
            time.sleep(0.5)
            if store.db.backend.name == "postgresql":
                waits_seen.append(_row_lock_waits(store))

    thread = threading.Thread(target=writer_holding_the_entry)
    thread.start()
    holding.wait(5)
    written = store.state.put("turn", "second", expected_version=2)
    thread.join()
    assert (written.version, written.value) == (3, "second")
    assert waits_seen in ([], [0]), "the compare-and-set queued on the row lock"


def _row_lock_waits(store: ctxbase.Store) -> int:
    with store.db.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )
