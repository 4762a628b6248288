"""CtxbaseSaver beyond the conformance suite: projects, paging, the choices it makes
where LangGraph leaves one, bad input, encryption. On every backend."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from cryptography.fernet import Fernet
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from sqlalchemy import select

import ctxbase
from ctxbase.db.schema import LangGraphCheckpoint, table
from ctxbase.errors import ConflictError, InvalidInputError, NotFoundError
from ctxbase.integrations.langgraph import CtxbaseSaver
from ctxbase.integrations.langgraph import checkpoint as saver_module
from tests.conftest import run_in_threads


def config(thread: str, checkpoint_id: str | None = None, namespace: str = "") -> Any:
    configurable = {"thread_id": thread, "checkpoint_ns": namespace}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def chain(
    saver: CtxbaseSaver, thread: str, count: int, *, namespace: str = "", **metadata: Any
) -> list[str]:
    """``count`` checkpoints of ``thread``, each the child of the one before; their ids."""
    ids: list[str] = []
    for step in range(count):
        checkpoint: Checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"step": step, "secret": "plain text of step"}
        parent = ids[-1] if ids else None
        saver.put(
            config(thread, parent, namespace),
            checkpoint,
            {"source": "loop", "step": step, "parents": {}, **metadata},  # type: ignore[typeddict-item]
            {},
        )
        ids.append(checkpoint["id"])
    return ids


def ids_of(saver: CtxbaseSaver, cfg: Any, **options: Any) -> list[str]:
    return [t.checkpoint["id"] for t in saver.list(cfg, **options)]


def test_projects_keep_threads_apart(store: ctxbase.Store) -> None:
    store.projects.create("second", name="Second")
    first, second = CtxbaseSaver(store), CtxbaseSaver(store, project="second")
    mine = chain(first, "t", 2)
    theirs = chain(second, "t", 3)
    assert ids_of(first, config("t")) == mine[::-1]
    assert ids_of(second, config("t")) == theirs[::-1]
    first.delete_thread("t")
    assert second.get_tuple(config("t")) is not None
    store.projects.delete("second")  # a project's threads go with it
    with store.db.connect() as connection:
        assert connection.execute(select(table(LangGraphCheckpoint))).all() == []


def test_list_pages_through_many_checkpoints(
    store: ctxbase.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saver_module, "PAGE", 7)
    saver = CtxbaseSaver(store)
    ids = chain(saver, "long", 30)
    other = chain(saver, "other", 3)
    newest_first = ids[::-1]
    assert ids_of(saver, config("long")) == newest_first
    assert ids_of(saver, config("long"), limit=17) == newest_first[:17]
    assert ids_of(saver, config("long"), before=config("long", ids[20])) == ids[:20][::-1]
    everything = ids_of(saver, None)
    assert sorted(everything) == sorted(ids + other) and len(everything) == 33
    assert everything == sorted(everything, reverse=True)

    async def listed() -> list[str]:
        return [t.checkpoint["id"] async for t in saver.alist(config("long"), limit=15)]

    assert asyncio.run(listed()) == newest_first[:15]


def test_copy_thread_refuses_a_target_with_a_history(store: ctxbase.Store) -> None:
    saver = CtxbaseSaver(store)
    chain(saver, "source", 2)
    chain(saver, "taken", 1)
    with pytest.raises(ConflictError, match="taken"):
        saver.copy_thread("source", "taken")
    assert len(ids_of(saver, config("taken"))) == 1


def test_prune_keeps_the_latest_and_drops_dangling_parents(store: ctxbase.Store) -> None:
    saver = CtxbaseSaver(store)
    ids = chain(saver, "t", 4)
    saver.put_writes(config("t", ids[1]), [("ch", "old")], "task-1")
    saver.put_writes(config("t", ids[3]), [("ch", "new")], "task-2")
    saver.prune(["t"])
    latest = saver.get_tuple(config("t"))
    assert latest is not None and latest.checkpoint["id"] == ids[3]
    assert latest.parent_config is None
    assert latest.pending_writes == [("task-2", "ch", "new")]
    assert ids_of(saver, config("t")) == [ids[3]]


def test_prune_refuses_what_it_cannot_do(store: ctxbase.Store) -> None:
    saver = CtxbaseSaver(store)
    chain(saver, "delta", 2, counters_since_delta_snapshot={"messages": [1, 1]})
    chain(saver, "plain", 2)
    with pytest.raises(NotImplementedError, match="delta"):
        saver.prune(["plain", "delta"])
    assert len(ids_of(saver, config("plain"))) == 2  # nothing pruned
    saver.prune(["delta"], strategy="delete")
    assert ids_of(saver, config("delta")) == []
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["plain"], strategy="keep_oldest")
    with pytest.raises(TypeError):
        saver.prune("plain")


def test_bad_input(store: ctxbase.Store) -> None:
    saver = CtxbaseSaver(store)
    with pytest.raises(InvalidInputError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(InvalidInputError, match="checkpoint_id"):
        saver.put_writes(config("t"), [("ch", 1)], "task")
    with pytest.raises(InvalidInputError):
        list(saver.list(config("t"), filter={'bad"key': 1}))
    with pytest.raises(NotFoundError):
        CtxbaseSaver(store, project="nowhere")


class FernetCipher:
    """LangGraph's cipher protocol over ``cryptography``'s Fernet."""

    def __init__(self) -> None:
        self.fernet = Fernet(Fernet.generate_key())

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "fernet", self.fernet.encrypt(plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "fernet"
        return self.fernet.decrypt(ciphertext)


def test_encrypted_checkpoints_hold_no_plain_text(store: ctxbase.Store) -> None:
    serde = EncryptedSerializer(FernetCipher())
    saver = CtxbaseSaver(ctxbase.AsyncStore(store), serde=serde)
    ids = chain(saver, "secret", 1)
    found = saver.get_tuple(config("secret"))
    assert found is not None and found.checkpoint["channel_values"]["secret"] == (
        "plain text of step"
    )
    with store.db.connect() as connection:
        (blob,) = connection.execute(select(table(LangGraphCheckpoint).c.checkpoint)).one()
    assert b"plain text" not in bytes(blob)
    assert ids_of(saver, config("secret")) == ids


def test_versions_increase_and_stay_comparable(store: ctxbase.Store) -> None:
    saver = CtxbaseSaver(store)
    versions = [saver.get_next_version(None, None)]
    for _ in range(11):
        versions.append(saver.get_next_version(versions[-1], None))
    assert versions == sorted(versions) and len(set(versions)) == 12
    assert saver.get_next_version(7, None).startswith(f"{8:032}.")


def test_from_url_with_and_async_with(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agent.db'}"
    with CtxbaseSaver.from_url(url, embedder="none") as saver:
        saver.setup()  # for code written for LangGraph's savers: a no-op here
        ids = chain(saver, "t", 2)

    async def reopened() -> list[str]:
        async with CtxbaseSaver.from_url(url, embedder="none") as saver:
            return [t.checkpoint["id"] async for t in saver.alist(config("t"))]

    assert asyncio.run(reopened()) == ids[::-1]


def test_concurrent_writers_of_one_thread(store: ctxbase.Store) -> None:
    """Threads of one run save writes at once (LangGraph does, in the background)."""
    saver = CtxbaseSaver(store)
    (checkpoint_id,) = chain(saver, "busy", 1)

    def work() -> None:
        task = str(uuid.uuid4())
        for i in range(5):
            saver.put_writes(config("busy", checkpoint_id), [(f"ch{i}", i)], task)

    assert run_in_threads(work, 4) == []
    found = saver.get_tuple(config("busy"))
    assert found is not None and found.pending_writes is not None
    assert len(found.pending_writes) == 4  # each task's idx 0, written once


def _extend(state: list[int] | None, writes: list[list[int]]) -> list[int]:
    items = list(state or [])
    for write in writes:
        items.extend(write)
    return items


class Counted(TypedDict):
    items: Annotated[list[int], DeltaChannel(_extend, snapshot_frequency=3)]
    n: int


def test_delta_channels_rebuild_as_in_memory(store: ctxbase.Store) -> None:
    """A DeltaChannel keeps only what each step added; its value is rebuilt from the
    ancestors' writes, the same from this saver as from LangGraph's in-memory one."""

    def step(state: Counted) -> dict[str, Any]:
        return {"items": [state["n"]], "n": state["n"] + 1}

    builder = StateGraph(Counted)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["n"] >= 7 else "step")
    results = []
    saver = CtxbaseSaver(store)
    for checkpointer in (InMemorySaver(), saver):
        graph = builder.compile(checkpointer=checkpointer)
        graph.invoke({"items": [], "n": 0}, config("d"))
        graph.invoke({"items": [100], "n": 0}, config("d"))
        history = [s.values for s in graph.get_state_history(config("d"))]
        results.append((graph.get_state(config("d")).values, history))
    assert results[0] == results[1]
    with pytest.raises(NotImplementedError, match="DeltaChannel"):
        saver.prune(["d"])
