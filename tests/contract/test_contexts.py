"""Context units: dedupe, versions, supersession, listing and deletion."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError


def test_add_dedupes_identical_content(api: Any) -> None:
    first = api.contexts.add(
        "src/app.py", "print('hi')", source_type="file", metadata={"lang": "py"}
    )
    again = api.contexts.add("src/app.py", "print('hi')", source_type="file")
    assert again.id == first.id and again.version == 1
    assert len(first.content_hash) == 64
    assert api.contexts.list().items == [first]


def test_update_adds_versions_and_links_them(api: Any) -> None:
    v1 = api.contexts.add("notes/plan", "step one")
    v2 = api.contexts.update(v1.id, content="step one and two")
    v3 = api.contexts.add("notes/plan", "step three")  # other content under the name: new version
    assert [v2.version, v3.version] == [2, 3]
    versions = api.contexts.versions(v2.id)
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.superseded_by for v in versions] == [v2.id, v3.id, None]
    assert api.contexts.get_latest("notes/plan") == v3
    assert api.contexts.get_version("notes/plan", 1).content == "step one"
    assert api.contexts.get(v1.id).superseded_by == v2.id
    assert v2.metadata == v1.metadata
    with pytest.raises(ConflictError):
        api.contexts.update(v1.id, content="editing an old version")
    same = api.contexts.update(v3.id, content="step three")
    assert same.id == v3.id  # nothing changed, no new version


def test_list_by_source_type_and_superseded(api: Any) -> None:
    a = api.contexts.add("a.md", "A", source_type="document")
    b = api.contexts.add("b.py", "B", source_type="file")
    b2 = api.contexts.update(b.id, content="B2")
    assert [c.id for c in api.contexts.list(source_type="file").items] == [b2.id]
    assert [c.id for c in api.contexts.list(source_type="document").items] == [a.id]
    assert {c.id for c in api.contexts.list(include_superseded=True).items} == {a.id, b.id, b2.id}
    assert [c.id for c in api.contexts.list(name="b.py").items] == [b2.id]
    page = api.contexts.list(limit=1)
    assert len(page.items) == 1 and page.next_cursor
    assert len(api.contexts.list(limit=1, cursor=page.next_cursor).items) == 1


def test_delete_removes_every_version(api: Any) -> None:
    v1 = api.contexts.add("gone.txt", "1")
    v2 = api.contexts.update(v1.id, content="2")
    api.contexts.delete(v1.id)
    for unit in (v1, v2):
        with pytest.raises(NotFoundError):
            api.contexts.get(unit.id)
    with pytest.raises(NotFoundError):
        api.contexts.get_latest("gone.txt")
    fresh = api.contexts.add("gone.txt", "again")
    assert fresh.version == 1


def test_bad_context_input(api: Any) -> None:
    with pytest.raises(InvalidInputError):
        api.contexts.add("", "empty name")
    with pytest.raises(InvalidInputError):
        api.contexts.add("x", "nul\x00")
    with pytest.raises(NotFoundError):
        api.contexts.update(uuid.uuid4(), content="x")
    assert api.contexts.list().items == []
