"""Finishing loaded tables of a PostgreSQL target: indexes built, foreign keys added back.

A job into PostgreSQL loads its tables without their secondary indexes and foreign keys
(see ``indexes`` and ``foreign_keys``), which the job's options list until they are back.
Each loaded table is finished in the background while the next one loads; a table whose
rows point at nothing is left for after the load, when its orphans are logged and removed.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from ctxbase.transfer import foreign_keys, indexes
from ctxbase.transfer.canonical import Checksum, RowRenderer
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.jobs import JobRecord
from ctxbase.transfer.tables import TablePlan
from ctxbase.transfer.verify import table_checksum
from ctxbase.transfer.worker import CancelFlag
from ctxbase.transfer.writing import RowFailure


class Finishing:
    """Puts back what ``record``'s job set aside in ``target`` for the load."""

    def __init__(
        self, source: Endpoint, target: Endpoint, record: JobRecord, cancel: CancelFlag
    ) -> None:
        self.source, self.target, self.record, self.cancel = source, target, record, cancel

    def build_indexes(self, table: str | None = None) -> None:
        """Build the indexes set aside for the load, of ``table`` or all (before
        verification, so a failure to build one fails the job)."""
        while pending := self.record.deferred("deferred_indexes", table):
            index = pending[0]
            if table is None:  # the background builds say nothing
                self.record.save(current_table=f"indexing {index['table']}")
            self.build_index(index)

    def build_index(self, index: dict[str, Any]) -> None:
        with self.target.db.connect(write=True) as connection:
            indexes.build(connection, index)
        self.record.done("deferred_indexes", index)

    def restore_foreign_keys(self, plan: TablePlan, *, remove_orphans: bool) -> bool:
        """Add back the foreign keys of ``plan``'s table set aside for the load, each
        checking every row; False if one cannot be added, rows pointing at nothing and
        ``remove_orphans`` false. With it, such rows are logged as failed and removed
        first (only while nothing else writes to the job)."""
        for key in self.record.deferred("deferred_foreign_keys", plan.name):
            with self.target.db.connect(write=True) as connection:
                try:
                    with connection.begin_nested():
                        foreign_keys.restore(connection, key)
                except IntegrityError:
                    if not remove_orphans:
                        return False
                    self.record.save(current_table=f"checking {plan.name}")
                    self._remove_orphans(connection, plan, key)
                    foreign_keys.restore(connection, key)
            self.record.done("deferred_foreign_keys", key)
        return True

    def _remove_orphans(self, connection: Connection, plan: TablePlan, key: dict[str, Any]) -> None:
        """Log and delete the rows of ``plan``'s table that ``key`` finds pointing at
        nothing, as failed rows, in the transaction that then adds ``key``."""
        orphans = foreign_keys.orphans(connection, key, plan.key.name)
        if not orphans:
            return
        connection.execute(plan.table.delete().where(plan.key.in_(orphans)))
        error = foreign_keys.describe_orphan(key)
        state = self.record.record_failures(plan.name, [RowFailure(o, error) for o in orphans])
        state["rows"] -= len(orphans)
        if "checksum" in state:  # hashed while copied: take the rows out of the sum again
            state["checksum"] = self._without(plan, state["checksum"], orphans)
        self.record.save_checkpoint(connection, plan.name)

    def _without(
        self, plan: TablePlan, checksum: dict[str, int], keys: list[Any]
    ) -> dict[str, int]:
        """The source checksum ``checksum`` less the rows keyed ``keys``, read again from
        the source (decoded: the canonical form is the same)."""
        columns = [c for c in plan.table.columns if c.key not in plan.self_references]
        renderer = RowRenderer.for_decoded(columns)
        result = Checksum.from_json(checksum)
        with self.source.db.read() as connection:
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                rows = connection.execute(select(*columns).where(plan.key.in_(chunk))).all()
                for digest in renderer.digests_or_none([tuple(row) for row in rows]):
                    result.remove(digest)
        return result.to_json()


class BackgroundFinishing:
    """Finishes loaded tables of a PostgreSQL target in the background while the next
    tables load: each table's indexes built as soon as it is loaded, two at a time (a
    full-text index first: it takes longest), then its foreign keys added back, one table
    after the other in load order (parents first), while the server takes its checksum on
    a connection of its own.

    A table's keys come after its indexes: a key's check of every row is then a cheap join
    through them, where alone it scans the table once per key. Keys go back in load order,
    each table's after its own indexes, so they never wait on a lock held by an index
    build of their table or of the one they point at (built before, as a parent).

    Once a table's foreign keys cannot be added (rows pointing at nothing) the checks
    stop: that table and the later ones are finished after the load, where orphans are
    logged and removed. A checksum is only kept of a table that will not change again.
    Leaving the ``with`` block waits for what is running and drops what is not.
    """

    def __init__(self, finishing: Finishing) -> None:
        self.finishing = finishing
        self.active = finishing.target.db.backend.bulk_loads
        self.indexing = ThreadPoolExecutor(2, thread_name_prefix="ctxbase-migrate-index")
        self.adding_keys = ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate-finish")
        self.checksumming = ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate-sum")
        self.futures: list[Future[None]] = []
        self.checksums: dict[str, Checksum] = {}
        self.stopped = False

    def __enter__(self) -> BackgroundFinishing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped = True  # a check not started yet is left for after the load
        # (keys first: one running waits for its table's indexes, which then still build)
        for executor in (self.adding_keys, self.indexing, self.checksumming):
            executor.shutdown(wait=True, cancel_futures=True)

    def loaded(self, plan: TablePlan) -> None:
        if not self.active:
            return
        pending = self.finishing.record.deferred("deferred_indexes", plan.name)
        pending.sort(key=lambda index: " USING gin " not in index["definition"])
        built = [self.indexing.submit(self._build_index, index) for index in pending]
        # The checksum is taken while indexes are built and keys added (both read the rows
        # and change none); it is kept only if the keys could be added.
        checksum = None
        if not self.stopped:
            checksum = self.checksumming.submit(table_checksum, self.finishing.target.db, plan)
        self.futures += [*built, self.adding_keys.submit(self._add_keys, plan, built, checksum)]

    def _build_index(self, index: dict[str, Any]) -> None:
        if not self.finishing.cancel.is_set():
            self.finishing.build_index(index)

    def _add_keys(
        self, plan: TablePlan, built: list[Future[None]], checksum: Future[Checksum] | None
    ) -> None:
        for future in built:
            future.result()
        if checksum is None or self.stopped or self.finishing.cancel.is_set():
            return
        if not self.finishing.restore_foreign_keys(plan, remove_orphans=False):
            self.stopped = True
            return
        self.checksums[plan.name] = checksum.result()

    def wait(self) -> None:
        """Wait for everything submitted; raises the first error of the background."""
        for future in self.futures:
            future.result()
