"""Moving in: rows of another system imported with their ids, timestamps and links, on
every backend, through the library and over HTTP.

The 10,000-rows-per-kind import and the command line are in
tests/transfer/test_rows_import.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

import ctxbase
from ctxbase.db.schema import metadata
from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError
from ctxbase.records.imports import IMPORT_NAMESPACE, mapped_id

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: int) -> str:
    return datetime.fromtimestamp(T0.timestamp() + seconds, UTC).isoformat()


def counts(store: ctxbase.Store) -> dict[str, int]:
    with store.db.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in metadata.tables.items()
        }


def chat_rows() -> list[dict[str, Any]]:
    """A conversation of a source system: integer message ids, text conversation id."""
    return [
        {"kind": "conversation", "id": "c-1", "title": "Billing", "created_at": at(0),
         "updated_at": at(60), "metadata": {"source": "old"}},
        {"kind": "message", "id": 1, "conversation_id": "c-1", "role": "user",
         "content": "Why does the invoice total drift?", "input_tokens": 7, "created_at": at(1)},
        {"kind": "message", "id": 2, "conversation_id": "c-1", "role": "assistant",
         "content": "Rounding happens per line.", "output_tokens": 9, "created_at": at(2),
         "updated_at": at(30), "finish_reason": "stop"},
        {"kind": "memory", "id": "m-1", "content": "Invoices round per line",
         "conversation_id": "c-1", "first_message_id": 2, "importance": 0.8,
         "access_count": 4, "last_accessed_at": at(50), "created_at": at(3)},
        {"kind": "state", "namespace": "agents/billing", "key": "step", "value": {"n": 2},
         "version": 3, "owner_conversation_id": "c-1", "created_at": at(4), "updated_at": at(5)},
        {"kind": "context", "id": "u-1", "name": "invoice.py", "content": "total = sum(l)",
         "source_type": "file", "created_at": at(6)},
        {"kind": "context", "id": "u-2", "name": "invoice.py", "content": "total = round(s)",
         "source_type": "file", "created_at": at(7)},
        {"kind": "event", "id": 501, "event_type": "invoice.fixed", "data": {"n": 1},
         "created_at": at(8)},
    ]  # fmt: skip


def test_rows_keep_their_ids_times_and_links(api: Any, store: ctxbase.Store) -> None:
    report = api.imports.rows(chat_rows())
    assert report.written == {
        "conversation": 1, "message": 2, "memory": 1, "state": 1, "context": 2, "event": 1
    }  # fmt: skip
    assert (report.rows, report.batches, report.skipped) == (8, 1, {})
    chat_id = mapped_id("conversation", "c-1")
    assert report.ids["conversation"] == {"c-1": chat_id}
    assert report.ids["message"] == {"1": mapped_id("message", 1), "2": mapped_id("message", 2)}

    chat = api.conversations.get(chat_id)
    assert (chat.created_at, chat.updated_at) == (T0, datetime.fromisoformat(at(60)))
    assert (chat.message_count, chat.input_tokens, chat.output_tokens) == (2, 7, 9)
    messages = api.messages.list(chat_id).items
    assert [(m.id, m.position, m.created_at) for m in messages] == [
        (mapped_id("message", 1), 1, datetime.fromisoformat(at(1))),
        (mapped_id("message", 2), 2, datetime.fromisoformat(at(2))),
    ]
    memory = api.memories.list().items[0]
    assert (memory.id, memory.conversation_id, memory.first_message_id) == (
        mapped_id("memory", "m-1"), chat_id, mapped_id("message", 2)
    )  # fmt: skip
    assert (memory.access_count, memory.created_at, memory.updated_at) == (
        4, datetime.fromisoformat(at(3)), datetime.fromisoformat(at(3))
    )  # fmt: skip
    assert [h.action for h in api.memories.history(memory.id)] == ["add"]
    entry = api.state.get("step", namespace="agents/billing")
    assert (entry.value, entry.version, entry.updated_at) == (
        {"n": 2}, 3, datetime.fromisoformat(at(5))
    )  # fmt: skip
    first, second = api.contexts.versions(mapped_id("context", "u-1"))
    assert (first.version, first.superseded_by, second.version) == (1, second.id, 2)
    assert api.contexts.get_latest("invoice.py").id == mapped_id("context", "u-2")
    assert api.events.last_sequence() == 1
    assert api.events.list().items[0].id == mapped_id("event", 501)
    # Searchable at once, by text and by vector, as written by the API.
    hits = api.search("invoice total drift", kinds=["message"], mode="text").hits
    assert hits[0].id == mapped_id("message", 1)
    assert api.search("rounding per line", mode="vector", threshold=0.0).hits
    # Messages appended later continue the positions and counters.
    assert api.messages.append(chat_id, role="user", content="Thanks").position == 3
    assert api.conversations.get(chat_id).message_count == 3
    with store.db.connect() as connection:
        stored = connection.execute(
            select(metadata.tables["messages"].c.updated_at).order_by("position")
        ).scalars()
        assert list(stored)[:2] == [datetime.fromisoformat(at(1)), datetime.fromisoformat(at(30))]


def test_a_batch_with_one_broken_reference_writes_nothing(api: Any, store: ctxbase.Store) -> None:
    rows = chat_rows()
    rows[2] = {**rows[2], "conversation_id": "c-missing"}
    before = counts(store)
    with pytest.raises(InvalidInputError) as error:
        api.imports.rows(rows)
    assert "line 3 (message): conversation_id: c-missing names no conversation" in str(error.value)
    assert "Nothing of this batch (lines 1 to 8) was written" in str(error.value)
    assert counts(store) == before
    assert error.value.details[0]["location"] == ["rows", 2, "conversation_id"]


def test_batches_before_a_broken_one_stay_written_and_a_rerun_continues(
    api: Any, store: ctxbase.Store
) -> None:
    rows = chat_rows()
    broken = [*rows[:4], {**rows[4], "owner_conversation_id": "nobody"}, *rows[5:]]
    with pytest.raises(InvalidInputError) as error:
        api.imports.rows(broken, batch_size=3)
    said = str(error.value)
    assert "line 5 (state): owner_conversation_id" in said
    assert "lines 4 to 6" in said and "the 1 batch(es) before it were" in said
    assert "existing='skip'" in said  # the hint: how to continue
    assert api.conversations.get(mapped_id("conversation", "c-1")).message_count == 2
    with pytest.raises(NotFoundError):
        api.memories.get(mapped_id("memory", "m-1"))  # line 4: in the failed batch
    report = api.imports.rows(rows, batch_size=3, existing="skip")
    assert report.skipped == {"conversation": 1, "message": 2}
    assert sum(report.written.values()) == 5
    assert api.conversations.get(mapped_id("conversation", "c-1")).message_count == 2


def test_ids_that_are_not_uuids_map_the_same_way_every_time(api: Any, store: ctxbase.Store) -> None:
    first = api.imports.rows(chat_rows())
    document = "\n".join(json.dumps(row) for row in chat_rows())  # JSON Lines as one text
    again = api.imports.rows(document, existing="skip")
    assert again.ids == first.ids and sum(again.skipped.values()) == 8
    assert again.written == {}
    assert mapped_id("message", 1) == uuid.uuid5(IMPORT_NAMESPACE, "message:1")
    assert mapped_id("message", "1") == mapped_id("message", 1)  # "1" and 1 alike
    # UUIDs stay as they are; another namespace gives other ids.
    given = uuid.uuid4()
    other = uuid.uuid4()
    report = api.imports.rows(
        [{"kind": "conversation", "id": str(given)}, {"kind": "conversation", "id": "c-1"}],
        id_namespace=other,
    )
    assert report.ids == {"conversation": {"c-1": uuid.uuid5(other, "conversation:c-1")}}
    assert api.conversations.get(given).id == given


def test_an_id_already_in_the_project_is_a_conflict_unless_skipped(api: Any) -> None:
    api.imports.rows(chat_rows()[:1])
    with pytest.raises(ConflictError) as error:
        api.imports.rows(chat_rows()[:1])
    assert "line 1 (conversation): id: c-1 is already in project 'default'" in str(error.value)
    assert "existing='skip'" in str(error.value)
    assert api.imports.rows(chat_rows()[:1], existing="skip").skipped == {"conversation": 1}


def test_another_projects_rows_are_refused_like_missing_ones(
    api: Any, store: ctxbase.Store
) -> None:
    store.projects.create("other")
    theirs = store.conversations.create(title="theirs", project="other")
    missing = uuid.uuid4()
    said = []
    for target in (theirs.id, missing):
        with pytest.raises(InvalidInputError) as error:
            api.imports.rows(
                [{"kind": "message", "conversation_id": str(target), "role": "user",
                  "content": "hi"}]
            )  # fmt: skip
        said.append(str(error.value).replace(str(target), "ID"))
    assert said[0] == said[1]
    assert "names no conversation of project 'default' nor of this batch" in said[0]
    # The same id cannot be taken for a row of this project either.
    with pytest.raises(ConflictError, match="already used outside project 'default'"):
        api.imports.rows([{"kind": "conversation", "id": str(theirs.id)}], existing="skip")
    assert store.conversations.get(theirs.id, project="other").message_count == 0


def test_every_bad_line_is_named_with_its_field(api: Any, store: ctxbase.Store) -> None:
    before = counts(store)
    rows: list[Any] = [
        {"kind": "conversation", "id": "ok"},
        {"kind": "message", "conversation_id": "ok", "role": "robot", "content": "x"},
        '{"kind": "memory", "content": "x", "importance": 2}',
        "{not json",
        {"kind": "planet", "id": 1},
        {"kind": "event", "event_type": "x", "colour": "red"},
        {"kind": "conversation", "id": "ok"},
        {"kind": "state", "key": "a b", "value": 1},
    ]
    with pytest.raises(InvalidInputError) as error:
        api.imports.rows(rows)
    said = str(error.value)
    assert "line 2 (message): role:" in said
    assert "line 3 (memory): importance:" in said
    assert "line 4: not JSON" in said
    assert "line 5: kind: planet is not a kind" in said
    assert "line 6 (event): colour: unknown field" in said
    lines = [p["line"] for p in error.value.details]
    assert lines == [2, 3, 4, 5, 6]  # the rest is checked once these are fixed
    fixed = [rows[0], rows[6], rows[7]]
    with pytest.raises(InvalidInputError) as error:
        api.imports.rows(fixed, first_line=10)
    assert [p["line"] for p in error.value.details] == [11, 12]
    assert "line 11 (conversation): id: the same id as line 10" in str(error.value)
    assert counts(store) == before


def test_positions_and_sequences_given_must_continue_without_gaps(api: Any) -> None:
    chat = {"kind": "conversation", "id": "c"}
    with pytest.raises(ConflictError, match="position: 2 is not the conversation's next"):
        api.imports.rows(
            [chat, {"kind": "message", "conversation_id": "c", "role": "user",
                    "content": "x", "position": 2}]
        )  # fmt: skip
    api.events.append("already.there")
    with pytest.raises(ConflictError, match="sequence: 1 is not the stream's next sequence"):
        api.imports.rows([{"kind": "event", "event_type": "old", "sequence": 1}])
    report = api.imports.rows(
        [{"kind": "event", "event_type": "old", "sequence": 2},
         {"kind": "event", "event_type": "older"}]
    )  # fmt: skip
    assert report.written == {"event": 2} and api.events.last_sequence() == 3
    assert api.events.append("after").sequence == 4


def test_context_versions_supersede_in_order_or_as_named(api: Any) -> None:
    api.contexts.add("old_name.py", "a = 1")
    stored = api.contexts.get_latest("old_name.py")
    report = api.imports.rows(
        [{"kind": "context", "id": "r", "name": "new_name.py", "content": "a = 2",
          "supersedes": str(stored.id)},
         {"kind": "context", "id": "r2", "name": "new_name.py", "content": "a = 3"},
         {"kind": "context", "id": "n", "name": "notes.md", "content": "x"}]
    )  # fmt: skip
    assert report.written == {"context": 3}
    # A rename: the lineage goes on under the new name, its numbers growing.
    assert api.contexts.get(stored.id).superseded_by == mapped_id("context", "r")
    with pytest.raises(NotFoundError):
        api.contexts.get_latest("old_name.py")
    latest = api.contexts.get_latest("new_name.py")
    assert (latest.id, latest.version) == (mapped_id("context", "r2"), 3)
    with pytest.raises(ConflictError, match="superseded already"):
        api.imports.rows(
            [{"kind": "context", "name": "other.py", "content": "b", "supersedes": str(stored.id)}]
        )
    # A merge: notes.md's latest and the named unit of another name, both superseded.
    api.imports.rows(
        [{"kind": "context", "id": "m", "name": "notes.md", "content": "x + a",
          "supersedes": "r2"}]
    )  # fmt: skip
    merged = api.contexts.get_latest("notes.md")
    assert (merged.id, merged.version) == (mapped_id("context", "m"), 4)
    assert api.contexts.get(mapped_id("context", "n")).superseded_by == merged.id
    assert api.contexts.get(mapped_id("context", "r2")).superseded_by == merged.id
    with pytest.raises(ConflictError, match="not above 4"):
        api.imports.rows([{"kind": "context", "name": "notes.md", "content": "y", "version": 4}])
    with pytest.raises(InvalidInputError, match="supersedes: gone names no context unit"):
        api.imports.rows([{"kind": "context", "name": "z", "content": "z", "supersedes": "gone"}])


def test_owned_rows_go_with_their_conversation(api: Any) -> None:
    api.imports.rows(
        [{"kind": "conversation", "id": "c"},
         {"kind": "memory", "id": "kept", "content": "outlives", "conversation_id": "c"},
         {"kind": "memory", "id": "owned", "content": "goes", "owner_conversation_id": "c"},
         {"kind": "state", "key": "owned", "value": 1, "owner_conversation_id": "c"}]
    )  # fmt: skip
    api.conversations.delete(mapped_id("conversation", "c"))
    assert [m.id for m in api.memories.list().items] == [mapped_id("memory", "kept")]
    assert api.memories.list().items[0].conversation_id is None
    with pytest.raises(NotFoundError):
        api.state.get("owned")


def test_an_empty_import_writes_nothing_and_bad_options_are_refused(api: Any) -> None:
    report = api.imports.rows([])
    assert (report.rows, report.batches, report.written) == (0, 0, {})
    with pytest.raises(InvalidInputError, match="batch_size"):
        api.imports.rows([], batch_size=0)
    with pytest.raises(InvalidInputError, match="existing"):
        api.imports.rows([], existing="overwrite")
    with pytest.raises(NotFoundError):
        api.imports.rows(chat_rows(), project="nowhere")
