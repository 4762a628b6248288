"""A LangGraph graph paused at an interrupt on SQLite moves to PostgreSQL with
``ctxbase migrate`` and resumes there, from the same checkpoint, with the same history.

The checkpoint tables are ordinary tables of the schema: migration, export/import and
verification carry them like any other (nothing in the transfer code names them).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typer.testing import CliRunner

from ctxbase import transfer
from ctxbase.cli import app
from ctxbase.db.database import Database
from ctxbase.errors import ConflictError
from ctxbase.integrations.langgraph import CtxbaseSaver, CtxbaseStore
from ctxbase.transfer import data_tables
from ctxbase.transfer.archive import export_archive, import_archive
from ctxbase.transfer.tables import plan_tables
from tests.conftest import open_store
from tests.postgres import PostgresServer
from tests.transfer.data import assert_same_data, settings

LANGGRAPH_TABLES = [
    "langgraph_checkpoints",
    "langgraph_writes",
    "langgraph_item_ttls",
    "langgraph_item_memories",
]
CONFIG: Any = {"configurable": {"thread_id": "post-1"}}


class Post(TypedDict):
    topic: str
    text: str
    verdict: str


def write(state: Post) -> dict[str, str]:
    text = f"A post about {state['topic']}"
    store = get_store()
    if store is not None:  # the long-term memory, when the graph has one
        store.put(("posts", state["topic"]), "draft", {"text": text})
    return {"text": text}


def review(state: Post) -> dict[str, str]:
    return {"verdict": interrupt({"draft": state["text"]})}


def publish(state: Post) -> dict[str, str]:
    return {"text": f"{state['text']} ({state['verdict']})"}


def build(checkpointer: CtxbaseSaver, store: CtxbaseStore | None = None) -> Any:
    graph = StateGraph(Post)
    graph.add_node("write", write)
    graph.add_node("review", review)
    graph.add_node("publish", publish)
    graph.add_edge(START, "write")
    graph.add_edge("write", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=checkpointer, store=store)


def history(graph: Any) -> list[tuple[Any, ...]]:
    """Every checkpoint of the thread, newest first: id, parent, values, next, step,
    pending interrupts."""
    return [
        (
            snapshot.config["configurable"]["checkpoint_id"],
            (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
            snapshot.values,
            snapshot.next,
            snapshot.metadata["step"],
            [i.value for i in snapshot.interrupts],
        )
        for snapshot in graph.get_state_history(CONFIG)
    ]


def test_langgraph_tables_are_copied_like_any_other() -> None:
    copied = data_tables()
    assert set(LANGGRAPH_TABLES) <= set(copied)
    assert [p.name for p in plan_tables(LANGGRAPH_TABLES)] == [
        t for t in copied if t in LANGGRAPH_TABLES
    ]


def test_a_paused_graph_moves_to_postgres_and_resumes(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source = f"sqlite:///{tmp_path / 'agent.db'}"
    with (
        CtxbaseSaver.from_url(source, embedder="hash:64") as saver,
        CtxbaseStore.from_url(source, embedder="hash:64") as memory,
    ):
        graph = build(saver, memory)
        paused = graph.invoke({"topic": "tea", "text": "", "verdict": ""}, CONFIG)
        assert paused["__interrupt__"][0].value == {"draft": "A post about tea"}
        before = history(graph)
        assert graph.get_state(CONFIG).next == ("review",)
        memory.put(("posts",), "reminder", {"text": "publish on Monday"}, ttl=60)

    with postgres.database() as target:
        result = CliRunner().invoke(app, ["migrate", "--from", source, "--to", target, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output[result.output.index("{") :])
        assert report["status"] == "completed" and report["verification"]["passed"]
        assert report["progress"]["rows"]["langgraph_checkpoints"] == len(before)
        assert_same_data(source, target, LANGGRAPH_TABLES)
        for name in LANGGRAPH_TABLES:
            assert report["progress"]["rows"][name] > 0, name

        with (
            CtxbaseSaver.from_url(target, embedder="hash:64") as saver,
            CtxbaseStore.from_url(target, embedder="hash:64") as memory,
        ):
            graph = build(saver, memory)
            assert history(graph) == before
            found = memory.search(("posts",), query="post about tea")
            assert [(i.namespace, i.key) for i in found][:1] == [(("posts", "tea"), "draft")]
            assert memory.get(("posts",), "reminder") is not None
            # resumed there, from the interrupt, by the async path
            done = asyncio.run(graph.ainvoke(Command(resume="approved"), CONFIG))
            assert done["text"] == "A post about tea (approved)"
            after = history(graph)
            assert after[-len(before) :] == before
            assert after[0][3] == () and len(after) > len(before)

        # and back, verified: the server's checksums of its rows equal SQLite's
        back = f"sqlite:///{tmp_path / 'back.db'}"
        returned = transfer.migrate(target, back, settings=settings())
        assert returned.status == "completed" and returned.verification is not None
        assert returned.verification.passed
        assert_same_data(target, back, LANGGRAPH_TABLES)
    with CtxbaseSaver.from_url(back, embedder="hash:64") as saver:
        assert history(build(saver)) == after


def test_threads_travel_in_an_archive(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'agent.db'}"
    with open_store(source) as store:
        saver = CtxbaseSaver(store)
        graph = build(saver)
        graph.invoke({"topic": "tea", "text": "", "verdict": ""}, CONFIG)
        before = history(graph)
        # a second project's thread goes along, into its own project
        store.projects.create("other", name="Other")
        build(CtxbaseSaver(store, project="other")).invoke(
            {"topic": "coffee", "text": "", "verdict": ""}, CONFIG
        )
    archive = tmp_path / "agent.jsonl.gz"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with Database(source) as db:
        report = export_archive(db, archive)
    assert report.rows["langgraph_checkpoints"] == 2 * len(before)
    assert report.rows["langgraph_writes"] > 0
    with open_store(target) as store, Database(target) as db:
        imported = import_archive(db, archive)
        assert imported.rows["langgraph_checkpoints"] == 2 * len(before)
        assert history(build(CtxbaseSaver(store))) == before
        other = build(CtxbaseSaver(store, project="other"))
        assert other.get_state(CONFIG).values["topic"] == "coffee"


def test_an_import_into_a_project_holding_only_threads_is_refused(tmp_path: Path) -> None:
    """A project counts as holding data when it holds checkpoints only: an import into it
    would merge two histories."""
    archive = tmp_path / "agent.jsonl.gz"
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        build(CtxbaseSaver(store)).invoke({"topic": "tea", "text": "", "verdict": ""}, CONFIG)
        with Database(f"sqlite:///{tmp_path / 'a.db'}") as db:
            export_archive(db, archive, project="default")
    target = f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(target) as store:
        build(CtxbaseSaver(store)).invoke({"topic": "tea", "text": "", "verdict": ""}, CONFIG)
    with Database(target) as db, pytest.raises(ConflictError, match="already holds data"):
        import_archive(db, archive)
