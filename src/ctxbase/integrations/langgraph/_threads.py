"""What CtxbaseSaver does to whole threads: delete, copy, prune (SQL over one project's
checkpoints and pending writes, in the caller's transaction)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ctxbase.db.schema import LangGraphCheckpoint, LangGraphWrite, new_id, table
from ctxbase.errors import ConflictError

checkpoints = table(LangGraphCheckpoint)
writes = table(LangGraphWrite)
cp = checkpoints.c

#: Ids per ``IN (...)`` list, and rows per page of a copy.
CHUNK = 500
PRUNE_STRATEGIES = ("keep_latest", "delete")
#: Metadata keys of threads that use a DeltaChannel, whose latest value is rebuilt from
#: older checkpoints: ``keep_latest`` cannot prune them.
DELTA_MARKERS = ("counters_since_delta_snapshot", "delta_writes_versioned")

Key = tuple[str, str, str]  # thread, namespace, checkpoint id


class Threads:
    """The threads of one project."""

    def __init__(self, project_id: Any) -> None:
        self._project_id = project_id

    def delete_for_runs(self, connection: Connection, run_ids: list[str]) -> None:
        doomed: list[Key] = []
        for chunk in chunks(run_ids):
            rows = connection.execute(
                select(cp.thread_id, cp.checkpoint_ns, cp.checkpoint_id).where(
                    cp.project_id == self._project_id,
                    cp.run_id.is_not(None),  # the partial index's condition
                    cp.run_id.in_(chunk),
                )
            )
            doomed += [(row[0], row[1], row[2]) for row in rows]
        self._delete_checkpoints(connection, doomed)

    def copy(self, connection: Connection, source: str, target: str) -> None:
        exists = select(cp.id).where(cp.project_id == self._project_id, cp.thread_id == target)
        if connection.execute(exists.limit(1)).first() is not None:
            raise ConflictError(f"Thread {target!r} already has checkpoints")
        for records in (checkpoints, writes):
            self._copy_rows(connection, records, source, target)

    def prune(self, connection: Connection, threads: list[str], strategy: str) -> None:
        if strategy == "delete":
            self.delete(connection, threads)
            return
        self._refuse_delta_threads(connection, threads)
        for thread_id in threads:
            self._keep_latest(connection, thread_id)

    def _copy_rows(self, connection: Connection, records: Any, source: str, target: str) -> None:
        last = None
        while True:
            query = select(records).where(
                records.c.project_id == self._project_id, records.c.thread_id == source
            )
            if last is not None:
                query = query.where(records.c.id > last)
            rows = connection.execute(query.order_by(records.c.id).limit(CHUNK)).mappings().all()
            if not rows:
                return
            copies = [{**row, "id": new_id(), "thread_id": target} for row in rows]
            connection.execute(insert(records), copies)
            last = rows[-1]["id"]

    def _refuse_delta_threads(self, connection: Connection, threads: list[str]) -> None:
        delta = set()
        for chunk in chunks(threads):
            rows = connection.execute(
                select(cp.thread_id, cp["metadata"]).where(
                    cp.project_id == self._project_id, cp.thread_id.in_(chunk)
                )
            )
            delta |= {t for t, meta in rows if any(m in meta for m in DELTA_MARKERS)}
        if delta:
            raise NotImplementedError(
                "keep_latest can't prune threads that use a DeltaChannel: "
                + ", ".join(sorted(delta))
            )

    def _keep_latest(self, connection: Connection, thread_id: str) -> None:
        rows = connection.execute(
            select(cp.checkpoint_ns, cp.checkpoint_id, cp.parent_checkpoint_id).where(
                cp.project_id == self._project_id, cp.thread_id == thread_id
            )
        ).all()
        latest: dict[str, tuple[str, str | None]] = {}
        for namespace, checkpoint_id, parent in rows:
            if namespace not in latest or checkpoint_id > latest[namespace][0]:
                latest[namespace] = (checkpoint_id, parent)
        doomed = [
            (thread_id, namespace, checkpoint_id)
            for namespace, checkpoint_id, _ in rows
            if latest[namespace][0] != checkpoint_id
        ]
        self._delete_checkpoints(connection, doomed)
        gone = {(namespace, checkpoint_id) for _, namespace, checkpoint_id in doomed}
        for namespace, (checkpoint_id, parent) in latest.items():
            if parent is not None and (namespace, parent) in gone:
                connection.execute(
                    update(checkpoints)
                    .where(*_is_checkpoint(self._project_id, (thread_id, namespace, checkpoint_id)))
                    .values(parent_checkpoint_id=None)
                )

    def delete(self, connection: Connection, threads: list[str]) -> None:
        for chunk in chunks(threads):
            for records in (checkpoints, writes):
                connection.execute(
                    delete(records).where(
                        records.c.project_id == self._project_id, records.c.thread_id.in_(chunk)
                    )
                )

    def _delete_checkpoints(self, connection: Connection, keys: Sequence[Key]) -> None:
        """Delete these checkpoints and their pending writes."""
        by_namespace: dict[tuple[str, str], list[str]] = defaultdict(list)
        for thread_id, namespace, checkpoint_id in keys:
            by_namespace[(thread_id, namespace)].append(checkpoint_id)
        for (thread_id, namespace), ids in by_namespace.items():
            for chunk in chunks(ids):
                for records in (checkpoints, writes):
                    c = records.c
                    connection.execute(
                        delete(records).where(
                            c.project_id == self._project_id,
                            c.thread_id == thread_id,
                            c.checkpoint_ns == namespace,
                            c.checkpoint_id.in_(chunk),
                        )
                    )


def _is_checkpoint(project: Any, key: Key) -> list[Any]:
    thread_id, namespace, checkpoint_id = key
    return [
        cp.project_id == project,
        cp.thread_id == thread_id,
        cp.checkpoint_ns == namespace,
        cp.checkpoint_id == checkpoint_id,
    ]


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
