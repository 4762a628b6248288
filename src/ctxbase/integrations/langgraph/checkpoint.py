"""LangGraph checkpoints in ctxbase: :class:`CtxbaseSaver`.

Each checkpoint is one row of ``langgraph_checkpoints``: the whole checkpoint as the
saver's serializer writes it (its type name and bytes), its parent, the run that wrote it
and its metadata as JSON (what ``list(filter=...)`` matches). Pending writes are rows of
``langgraph_writes``. Both belong to one project of the store, so a saver sees only its
project's threads, and deleting the project deletes them.

The hot paths (``put``, ``get_tuple``, ``put_writes``) run prepared statements on driver
cursors, as the store's message appends and reads do; the rest uses Core.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql import ClauseElement

from ctxbase.db import migrate
from ctxbase.db.prepared import PreparedStatement
from ctxbase.db.schema import LangGraphCheckpoint, LangGraphWrite, new_id, table
from ctxbase.errors import InvalidInputError
from ctxbase.integrations.langgraph._opening import DEFAULT_PROJECT, Opened, project_id
from ctxbase.integrations.langgraph._threads import PRUNE_STRATEGIES, Key, Threads, chunks
from ctxbase.store.aio import AsyncStore
from ctxbase.store.filters import metadata_matches
from ctxbase.store.store import Store

checkpoints = table(LangGraphCheckpoint)
writes = table(LangGraphWrite)
cp = checkpoints.c
wr = writes.c

#: Checkpoints read per query by ``list`` (no connection is held between pages).
PAGE = 100


class CtxbaseSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer keeping threads in a ctxbase store (SQLite or PostgreSQL).

    ``CtxbaseSaver(store)`` (a ``Store`` or an ``AsyncStore``) works in the store's
    ``project`` (default ``"default"``);
    ``CtxbaseSaver.from_url(url)`` opens a store and closes it after its ``with`` or
    ``async with`` block. Every method has its async twin (``aput``, ``aget_tuple``, …),
    run in a worker thread as the store's async facade does. ``serde`` serializes
    checkpoints and writes (LangGraph's JSON-plus/msgpack serializer by default; an
    ``EncryptedSerializer`` encrypts them at rest).

    Beyond ``put``, ``put_writes``, ``get_tuple``, ``list`` and ``delete_thread``:
    ``delete_for_runs``, ``copy_thread`` and ``prune``. Threads move between databases
    with ``ctxbase migrate`` like the rest of the store.
    """

    def __init__(
        self,
        store: Store | AsyncStore,
        *,
        project: str = DEFAULT_PROJECT,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        store = store.sync if isinstance(store, AsyncStore) else store
        self.store = store
        self.project = project
        self._db = store.db
        self._project_id = project_id(store, project)
        self._statements: dict[str, PreparedStatement] = {}
        self._threads = Threads(self._project_id)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        project: str = DEFAULT_PROJECT,
        serde: SerializerProtocol | None = None,
        **options: Any,
    ) -> Opened[CtxbaseSaver]:
        """A saver over the store at ``url`` (``options`` as for ``ctxbase.open``), for
        ``with`` or ``async with``; the store is closed at the end of the block."""
        return Opened(url, lambda store: cls(store, project=project, serde=serde), options)

    def setup(self) -> None:
        """Bring the store's schema to its newest revision (opening a store already does,
        unless ``auto_migrate=False``). Safe to call any number of times."""
        migrate.ensure_schema(self._db)

    # --- reading ---

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, namespace = _thread(config), _namespace(config)
        checkpoint_id = get_checkpoint_id(config)
        params = {
            "project_id": self._project_id,
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
        }
        if checkpoint_id:
            params["checkpoint_id"] = checkpoint_id
            statement = self._statement("langgraph.tuple.by_id", _select_tuple_by_id)
        else:
            statement = self._statement("langgraph.tuple.latest", _select_latest_tuple)
        with self._db.raw() as cursor:
            rows = statement.rows(cursor, params)
        if not rows:
            return None
        head = rows[0]
        head["thread_id"], head["checkpoint_ns"] = thread_id, namespace
        head["checkpoint_type"], head["checkpoint"] = head["value_type"], head["value"]
        return self._tuple(head, self._pending(rows[1:]))

    def _statement(self, name: str, build: Callable[[], ClauseElement]) -> PreparedStatement:
        """The prepared statement ``name``, kept by the saver once compiled."""
        statement = self._statements.get(name)
        if statement is None:
            statement = self._statements[name] = self._db.prepared(name, build)
        return statement

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by checkpoint id): of ``config``'s thread (and
        namespace and checkpoint id, when it names them), or of every thread of the
        project; whose metadata has each key of ``filter`` equal to its value; older
        than ``before``'s checkpoint; at most ``limit``."""
        for page in self._pages(config, filter, before, limit):
            yield from page

    def _pages(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Iterator[builtins.list[CheckpointTuple]]:
        """``list``'s checkpoints a page at a time; no connection is held between pages
        (the caller may use the store meanwhile)."""
        conditions = self._list_conditions(config, filter, before)
        order = (cp.checkpoint_id.desc(), cp.thread_id.desc(), cp.checkpoint_ns.desc())
        left = limit
        last: Mapping[str, Any] | None = None
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            query = select(checkpoints).where(*conditions)
            if last is not None:
                query = query.where(_after(last))
            with self._db.read() as connection:
                rows = [
                    dict(row)
                    for row in connection.execute(query.order_by(*order).limit(size)).mappings()
                ]
                found = self._writes_of(connection, rows)
            yield [self._tuple(row, found.get(_key(row), [])) for row in rows]
            if len(rows) < size:
                return
            left = None if left is None else left - len(rows)
            last = rows[-1]

    def _list_conditions(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
    ) -> builtins.list[Any]:
        conditions: builtins.list[Any] = [cp.project_id == self._project_id]
        if config is not None:
            conditions.append(cp.thread_id == _thread(config))
            namespace = config["configurable"].get("checkpoint_ns")
            if namespace is not None:
                conditions.append(cp.checkpoint_ns == namespace)
            if checkpoint_id := get_checkpoint_id(config):
                conditions.append(cp.checkpoint_id == checkpoint_id)
        if filter:
            conditions.append(metadata_matches(cp["metadata"], filter, self._db.backend))
        if before is not None and (before_id := get_checkpoint_id(before)):
            conditions.append(cp.checkpoint_id < before_id)
        return conditions

    def _writes_of(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> dict[Key, builtins.list[PendingWrite]]:
        """The pending writes of the checkpoints ``rows``, in ``writes_sort_key`` order."""
        wanted = {_key(row) for row in rows}
        found: dict[Key, builtins.list[dict[str, Any]]] = defaultdict(list)
        threads = sorted({key[0] for key in wanted})
        ids = sorted({key[2] for key in wanted})
        for chunk in chunks(ids):
            query = (
                select(writes)
                .where(
                    wr.project_id == self._project_id,
                    wr.thread_id.in_(threads),
                    wr.checkpoint_id.in_(chunk),
                )
                .order_by(wr.task_path, wr.task_id, wr.idx)
            )
            for write in connection.execute(query).mappings():
                key = (write["thread_id"], write["checkpoint_ns"], write["checkpoint_id"])
                if key in wanted:
                    found[key].append(dict(write))
        return {key: self._pending(rows) for key, rows in found.items()}

    def _pending(self, rows: Sequence[Mapping[str, Any]]) -> builtins.list[PendingWrite]:
        loads = self.serde.loads_typed
        return [
            (row["task_id"], row["channel"], loads((row["value_type"], row["value"])))
            for row in rows
        ]

    def _tuple(
        self, row: Mapping[str, Any], pending: builtins.list[PendingWrite]
    ) -> CheckpointTuple:
        thread_id, namespace = row["thread_id"], row["checkpoint_ns"]
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config=_config(thread_id, namespace, row["checkpoint_id"]),
            checkpoint=self.serde.loads_typed((row["checkpoint_type"], row["checkpoint"])),
            metadata=row["metadata"],
            parent_config=_config(thread_id, namespace, parent) if parent else None,
            pending_writes=pending,
        )

    # --- writing ---

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save ``checkpoint`` (whole: every channel value it holds) as the child of the
        checkpoint ``config`` names, if any; saving one id again replaces it."""
        thread_id, namespace = _thread(config), _namespace(config)
        kept = get_serializable_checkpoint_metadata(config, metadata)
        value_type, value = self.serde.dumps_typed(checkpoint)
        run_id = kept.get("run_id")
        params = {
            "id": new_id(),
            "project_id": self._project_id,
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": get_checkpoint_id(config),
            "run_id": None if run_id is None else str(run_id),
            "checkpoint_type": value_type,
            "checkpoint": value,
            "metadata": kept,
        }
        statement = self._statement("langgraph.checkpoint.put", self._upsert_checkpoint)
        with self._db.raw(write=True, one_statement=True) as cursor:
            statement.rows(cursor, params)
        return _config(thread_id, namespace, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes after the checkpoint ``config`` names. A write saved
        again is kept as it was, except the special channels (errors, interrupts, …),
        which replace theirs."""
        if not writes:
            return
        thread_id, namespace = _thread(config), _namespace(config)
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            raise InvalidInputError("put_writes needs the checkpoint_id of its checkpoint")
        dumps = self.serde.dumps_typed
        rows = []
        for idx, (channel, value) in enumerate(writes):
            value_type, blob = dumps(value)
            rows.append(
                {
                    "id": new_id(),
                    "project_id": self._project_id,
                    "thread_id": thread_id,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": checkpoint_id,
                    "task_id": task_id,
                    "task_path": task_path,
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "value_type": value_type,
                    "value": blob,
                }
            )
        if all(channel in WRITES_IDX_MAP for channel, _ in writes):
            statement = self._statement("langgraph.writes.replace", self._replace_writes)
        else:
            statement = self._statement("langgraph.writes.add", self._add_writes)
        with self._db.raw(write=True) as cursor:
            statement.many(cursor, rows)

    def _upsert_checkpoint(self) -> ClauseElement:
        statement = self._db.backend.insert(checkpoints)
        replaced = (
            "parent_checkpoint_id",
            "run_id",
            "checkpoint_type",
            "checkpoint",
            "metadata",
        )
        return statement.on_conflict_do_update(
            index_elements=_CHECKPOINT_KEY,
            set_={name: statement.excluded[name] for name in replaced},
        )

    def _replace_writes(self) -> ClauseElement:
        statement = self._db.backend.insert(writes)
        return statement.on_conflict_do_update(
            index_elements=_WRITE_KEY,
            set_={
                name: statement.excluded[name]
                for name in ("task_path", "channel", "value_type", "value")
            },
        )

    def _add_writes(self) -> ClauseElement:
        return self._db.backend.insert(writes).on_conflict_do_nothing(index_elements=_WRITE_KEY)

    # --- deleting and copying ---

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of the thread, in every namespace."""
        with self._db.connect(write=True) as connection:
            self._threads.delete(connection, [str(thread_id)])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the runs wrote (their ``run_id`` metadata), with their
        pending writes. Threads whose later checkpoints came from other runs keep those."""
        wanted = [str(run_id) for run_id in run_ids]
        if not wanted:
            return
        with self._db.connect(write=True) as connection:
            self._threads.delete_for_runs(connection, wanted)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to a new one, ids kept (a fork
        with the same history). A target that already has checkpoints is a conflict."""
        with self._db.connect(write=True) as connection:
            self._threads.copy(connection, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's latest checkpoint (the one
        ``get_tuple`` loads) with its pending writes, delete the others and their writes;
        a kept checkpoint whose parent goes loses its parent link. ``"delete"``: delete
        the threads. In one transaction. Threads using a DeltaChannel are refused by
        ``keep_latest`` (their latest values are rebuilt from older checkpoints):
        nothing is pruned then."""
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread ids, not a str")
        if strategy not in PRUNE_STRATEGIES:
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        threads = list(dict.fromkeys(str(t) for t in thread_ids))
        if not threads:
            return
        with self._db.connect(write=True) as connection:
            self._threads.prune(connection, threads, strategy)

    # --- versions ---

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``"<32-digit counter>.<random fraction>"``: increasing, and unique even when
        two branches of a thread step the same channel."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # --- async twins: the sync methods in a worker thread ---

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        pages = self._pages(config, filter, before, limit)
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            for item in page:
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))


# --- statements and helpers ---------------------------------------------------------------

_CHECKPOINT_KEY = ["project_id", "thread_id", "checkpoint_ns", "checkpoint_id"]
_WRITE_KEY = [*_CHECKPOINT_KEY, "task_id", "idx"]


def _select_tuple(*, latest: bool) -> ClauseElement:
    """A checkpoint of a thread's namespace (its latest, or ``:checkpoint_id``) and its
    pending writes in one statement: the checkpoint's row first, then one row per write
    in ``writes_sort_key`` order (columns a part does not have are NULL)."""
    where_thread = [
        cp.project_id == bindparam("project_id"),
        cp.thread_id == bindparam("thread_id"),
        cp.checkpoint_ns == bindparam("checkpoint_ns"),
    ]
    target: Any = bindparam("checkpoint_id", type_=cp.checkpoint_id.type)
    if latest:
        target = select(func.max(cp.checkpoint_id)).where(*where_thread).scalar_subquery()
    head = select(
        literal_column("0").label("part"),
        cp.checkpoint_id,
        cp.parent_checkpoint_id,
        cp.checkpoint_type.label("value_type"),
        cp.checkpoint.label("value"),
        cp["metadata"],
        _null(wr.task_id),
        _null(wr.channel),
        _null(wr.task_path),
        _null(wr.idx),
    ).where(*where_thread, cp.checkpoint_id == target)
    writes_of = select(
        literal_column("1"),
        wr.checkpoint_id,
        _null(cp.parent_checkpoint_id),
        wr.value_type,
        wr.value,
        _null(cp["metadata"]),
        wr.task_id,
        wr.channel,
        wr.task_path,
        wr.idx,
    ).where(
        wr.project_id == bindparam("project_id"),
        wr.thread_id == bindparam("thread_id"),
        wr.checkpoint_ns == bindparam("checkpoint_ns"),
        wr.checkpoint_id == target,
    )
    both = union_all(head, writes_of).subquery()
    return select(both).order_by(both.c.part, both.c.task_path, both.c.task_id, both.c.idx)


def _select_tuple_by_id() -> ClauseElement:
    return _select_tuple(latest=False)


def _select_latest_tuple() -> ClauseElement:
    return _select_tuple(latest=True)


def _null(column: Any) -> Any:
    """NULL typed as ``column``, named after it."""
    return cast(null(), column.type).label(column.name)


def _after(row: Mapping[str, Any]) -> Any:
    """Rows after ``row`` in ``list``'s order (checkpoint id, thread, namespace: all
    descending)."""
    checkpoint_id, thread_id = row["checkpoint_id"], row["thread_id"]
    return or_(
        cp.checkpoint_id < checkpoint_id,
        and_(
            cp.checkpoint_id == checkpoint_id,
            or_(
                cp.thread_id < thread_id,
                and_(cp.thread_id == thread_id, cp.checkpoint_ns < row["checkpoint_ns"]),
            ),
        ),
    )


def _thread(config: RunnableConfig) -> str:
    try:
        return str(config["configurable"]["thread_id"])
    except KeyError:
        raise InvalidInputError(
            "A checkpointer needs config['configurable']['thread_id']"
        ) from None


def _namespace(config: RunnableConfig) -> str:
    return str(config["configurable"].get("checkpoint_ns") or "")


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
        }
    }


def _key(row: Mapping[str, Any]) -> Key:
    return (row["thread_id"], row["checkpoint_ns"], row["checkpoint_id"])


__all__ = ["CtxbaseSaver"]
