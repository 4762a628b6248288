"""The console's own reads and helpers: counts beside the lists, and text differences."""

from __future__ import annotations

from datetime import timedelta

import pytest

import ctxbase
from ctxbase.db.schema import utcnow
from ctxbase.errors import NotFoundError
from ctxbase.server.console.counts import KINDS, project_counts
from ctxbase.server.console.diffs import line_diff, word_diff
from ctxbase.store.base import Scope


@pytest.mark.skip_backend("postgres-novector", reason="counts read no vectors")
def test_counts_are_what_the_lists_show(store: ctxbase.Store) -> None:
    chat = store.conversations.create(title="one")
    store.messages.append_many(chat.id, [{"role": "user", "content": f"m{n}"} for n in range(3)])
    store.conversations.create(title="two")
    store.memories.add("kept")
    gone = store.memories.add("expires", ttl_seconds=1)
    store.memories.update(gone.id, expires_at=utcnow() - timedelta(seconds=1))
    first = store.contexts.add("doc", "v1")
    store.contexts.update(first.id, content="v2")
    store.contexts.add("other", "x")
    store.state.put("a", 1, namespace="n")
    store.events.append_many([{"event_type": "t"}, {"event_type": "t"}])
    store.subscriptions.create(agent_id="a")

    counts = project_counts(store, "default")
    assert counts == {
        "conversations": 2,
        "messages": 3,
        "contexts": 2,  # latest versions
        "memories": 1,  # unexpired
        "state": 1,
        "events": 2,
        "subscriptions": 1,
    }
    assert counts["memories"] == len(store.memories.list().items)
    assert counts["contexts"] == len(store.contexts.list().items)
    assert project_counts(store, "default", ["memories"]) == {"memories": 1}
    assert set(project_counts(store, "default")) == set(KINDS)


@pytest.mark.skip_backend("postgres-novector", reason="counts read no vectors")
def test_counts_stay_inside_the_scope(store: ctxbase.Store) -> None:
    store.projects.create("alpha")
    store.memories.add("in alpha", project="alpha")
    store.tenants.create("acme")
    assert project_counts(store, "alpha")["memories"] == 1
    limited = store.scoped(Scope(projects=frozenset({"default"})))
    with pytest.raises(NotFoundError):
        project_counts(limited, "alpha")
    other_tenant = store.scoped(Scope(tenant="acme", server_admin=False))
    with pytest.raises(NotFoundError):
        project_counts(other_tenant, "alpha")  # no such project in that tenant


def test_word_diff_marks_the_changed_words() -> None:
    segments = word_diff("The user drinks green tea", "The user drinks black coffee")
    kinds = [(s.kind, s.text) for s in segments]
    assert ("same", "The user drinks ") in kinds
    assert ("del", "green tea") in kinds and ("add", "black coffee") in kinds
    assert "".join(s.text for s in segments if s.kind != "add") == "The user drinks green tea"


def test_line_diff_keeps_context_around_changes() -> None:
    old = "\n".join(f"line {n}" for n in range(20))
    new = old.replace("line 10", "line ten")
    segments = line_diff(old, new)
    assert segments[0].kind == "gap"
    assert [s.text for s in segments if s.kind == "del"] == ["line 10"]
    assert [s.text for s in segments if s.kind == "add"] == ["line ten"]
    assert len([s for s in segments if s.kind == "same"]) == 6  # three lines either side
    assert line_diff("same", "same") == []
