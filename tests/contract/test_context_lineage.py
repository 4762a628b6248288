"""Context units across names: a rename on update, a unit superseding one of another name
(a renamed or merged file), and what versions, get_latest, search and delete make of
the lineage."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError


def _names_and_versions(units: list[Any]) -> list[tuple[str, int]]:
    return [(unit.name, unit.version) for unit in units]


def test_a_rename_on_update_continues_the_lineage(api: Any) -> None:
    v1 = api.contexts.add("src/old.py", "def f(): pass", source_type="file", metadata={"l": 1})
    v2 = api.contexts.update(v1.id, content="def f(): return 1")
    moved = api.contexts.update(v2.id, content="def f(): return 1", name="src/new.py")
    assert (moved.name, moved.version, moved.superseded_by) == ("src/new.py", 3, None)
    assert (moved.source_type, moved.metadata) == ("file", {"l": 1})
    assert api.contexts.get(v2.id).superseded_by == moved.id
    for unit in (v1, v2, moved):
        assert _names_and_versions(api.contexts.versions(unit.id)) == [
            ("src/old.py", 1),
            ("src/old.py", 2),
            ("src/new.py", 3),
        ]
    assert api.contexts.get_latest("src/new.py") == moved
    assert api.contexts.get_version("src/old.py", 2).id == v2.id
    assert api.contexts.get_version("src/new.py", 3).id == moved.id
    with pytest.raises(NotFoundError):
        api.contexts.get_version("src/new.py", 1)
    with pytest.raises(NotFoundError) as gone:
        api.contexts.get_latest("src/old.py")
    assert gone.value.details["latest_id"] == str(moved.id)
    assert gone.value.details["latest_name"] == "src/new.py"
    assert [u.id for u in api.contexts.list().items] == [moved.id]
    with pytest.raises(ConflictError) as stale:
        api.contexts.update(v2.id, content="an edit of the old name")
    assert stale.value.details == {"latest_id": str(moved.id), "latest_name": "src/new.py"}


def test_add_supersedes_a_unit_of_another_name(api: Any) -> None:
    old = api.contexts.add("docs/setup.md", "install it", source_type="document")
    new = api.contexts.add(
        "docs/install.md", "install it with pip", source_type="document", supersedes=old.id
    )
    assert (new.version, api.contexts.get(old.id).superseded_by) == (2, new.id)
    assert _names_and_versions(api.contexts.versions(new.id)) == [
        ("docs/setup.md", 1),
        ("docs/install.md", 2),
    ]
    again = api.contexts.add(
        "docs/install.md", "install it with pip", source_type="document", supersedes=old.id
    )
    assert again == new  # the same call again changes nothing
    with pytest.raises(ConflictError):  # the old unit is not the latest any more
        api.contexts.add("docs/other.md", "another", supersedes=old.id)
    same = api.contexts.add("docs/install.md", "install it with pip", supersedes=new.id)
    assert same == new  # superseding the name's own latest with its content: a no-op


def test_a_merge_supersedes_both_units(api: Any) -> None:
    a1 = api.contexts.add("a.py", "A")
    a2 = api.contexts.update(a1.id, content="A2")
    a3 = api.contexts.update(a2.id, content="A3")
    b1 = api.contexts.add("b.py", "B")
    merged = api.contexts.add("b.py", "A3 + B", supersedes=a3.id)
    assert merged.version == 4  # after the highest version it supersedes
    assert api.contexts.get(a3.id).superseded_by == merged.id
    assert api.contexts.get(b1.id).superseded_by == merged.id
    lineage = _names_and_versions(api.contexts.versions(b1.id))
    assert lineage == [("a.py", 1), ("b.py", 1), ("a.py", 2), ("a.py", 3), ("b.py", 4)]
    assert api.contexts.get_latest("b.py") == merged
    after = api.contexts.update(merged.id, content="A3 + B, tidied")
    assert after.version == 5

    c1 = api.contexts.add("c.py", "C")
    renamed_onto = api.contexts.update(c1.id, content="A3 + B + C", name="b.py")
    assert (renamed_onto.name, renamed_onto.version) == ("b.py", 6)
    assert api.contexts.get(after.id).superseded_by == renamed_onto.id
    assert api.contexts.get(c1.id).superseded_by == renamed_onto.id


def test_search_sees_only_the_latest_unit_after_a_rename(api: Any) -> None:
    old = api.contexts.add("notes/kubernetes.md", "kubernetes upgrade plan")
    new = api.contexts.update(old.id, content="kubernetes upgrade plan", name="notes/k8s.md")
    for mode in ("text", "vector", "hybrid"):
        hits = api.search("kubernetes upgrade plan", kinds=["context"], mode=mode).hits
        assert [hit.id for hit in hits] == [new.id], mode


def test_a_renamed_away_name_can_start_a_new_unit(api: Any) -> None:
    old = api.contexts.add("main.py", "one")
    api.contexts.update(old.id, content="two")
    moved = api.contexts.update(api.contexts.get_latest("main.py").id, content="two", name="app.py")
    fresh = api.contexts.add("main.py", "a new main")
    assert fresh.version == 3  # (name, version) stays unique
    assert _names_and_versions(api.contexts.versions(fresh.id)) == [("main.py", 3)]
    assert api.contexts.get_latest("main.py") == fresh
    assert len(api.contexts.versions(moved.id)) == 3


def test_delete_removes_the_whole_lineage_and_nothing_else(api: Any) -> None:
    a = api.contexts.add("x.py", "xylophone")
    b = api.contexts.update(a.id, content="xylophone", name="y.py")
    c = api.contexts.add("z.py", "zither xylophone", supersedes=b.id)
    fresh_x = api.contexts.add("x.py", "a new file")
    api.contexts.delete(a.id)
    for unit in (a, b, c):
        with pytest.raises(NotFoundError):
            api.contexts.get(unit.id)
    assert [u.id for u in api.contexts.list(include_superseded=True).items] == [fresh_x.id]
    assert api.search("xylophone zither", kinds=["context"], mode="text").hits == []


def test_supersedes_must_name_a_unit_of_the_project(api: Any) -> None:
    api.projects.create("elsewhere")
    foreign = api.contexts.add("theirs.md", "theirs", project="elsewhere")

    def refusal(unit_id: Any) -> dict[str, Any]:
        with pytest.raises(InvalidInputError) as refused:
            api.contexts.add("mine.md", "mine", supersedes=unit_id)
        return refused.value.to_dict()

    random = refusal(uuid.uuid4())
    assert "supersedes" in random["error"]["message"]
    assert refusal(foreign.id) == random
    with pytest.raises(InvalidInputError):
        api.contexts.add("mine.md", "mine", supersedes="not an id")
    with pytest.raises(InvalidInputError):
        api.contexts.update(foreign.id, content="x", name="")
    assert api.contexts.list().items == []
    assert api.contexts.get(foreign.id, project="elsewhere").superseded_by is None
