"""Copying one table's rows, page after page, each page committed with its checkpoint.

A page is read in primary-key order after the step's checkpoint and written in one
transaction of the target holding the rows *and* the checkpoint, so a copy stopped at any
moment resumes after its last committed page. A row that cannot be written goes to the
error log; the rest continue. A column pointing into its own table is copied empty, then
filled in by a link pass once every row is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Column, Connection, or_

from ctxbase.transfer.canonical import Checksum, RowRenderer
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.jobs import JobRecord, key_from_json, key_to_json
from ctxbase.transfer.postgres import PostgresCopyWriter
from ctxbase.transfer.reading import Page, TableReader
from ctxbase.transfer.tables import TablePlan, has_rows
from ctxbase.transfer.worker import CancelFlag
from ctxbase.transfer.writing import (
    CoreInsertWriter,
    LinkWriter,
    PageWriter,
    RowFailure,
    RowWriter,
    prepare_page,
    write_page,
)


class TableCopy:
    """Copies tables of ``record``'s job from ``source`` into ``target``."""

    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        record: JobRecord,
        *,
        batch_size: int,
        cancel: CancelFlag,
    ) -> None:
        self.source, self.target, self.record = source, target, record
        self.batch_size = batch_size
        self.cancel = cancel

    def copy(self, plan: TablePlan) -> bool:
        """Copy one table's rows after its checkpoint; False when cancelled."""
        if self._nothing_to_copy(plan, plan.name):
            return True
        # Self-references are left empty here and filled in by the link pass.
        columns = [c for c in plan.table.columns if c.key not in plan.self_references]
        reader = TableReader(self.source.db, plan, columns)
        single = CoreInsertWriter(plan.table, columns)
        # SQLite's stored rows are hashed as they go by, while the server loads the previous
        # page; other sources are checksummed by their own server at the end.
        hasher = None
        if self.source.db.backend.renders_stored_rows and not plan.self_references:
            hasher = RowRenderer.for_sqlite(columns)
        bulk = self._bulk_writer(plan, columns)
        return self._copy_pages(plan, plan.name, reader, bulk, single, hasher)

    def link(self, plan: TablePlan) -> bool:
        """Fill in the self-referencing columns, now that every row they point at is there."""
        if self._nothing_to_copy(plan, plan.link_step):
            return True
        refs = [plan.table.c[name] for name in plan.self_references]
        reader = TableReader(
            self.source.db, plan, [plan.key, *refs], where=or_(*(c.is_not(None) for c in refs))
        )
        writer = LinkWriter(plan.table, plan.key, refs)
        return self._copy_pages(plan, plan.link_step, reader, writer, writer)

    def _nothing_to_copy(self, plan: TablePlan, step: str) -> bool:
        """Whether ``step`` has not started and its table is empty in the source: then it
        is done at once, with one save (most tables of a store are empty, or nearly)."""
        state = self.record.checkpoint(step)
        if state["done"] or state["after"] is not None:
            return False
        with self.source.db.read() as connection:
            if has_rows(connection, plan):
                return False
        state["done"] = True
        job = self.record.job
        counts: dict[str, Any] = {}
        if step in job["totals"]:  # a table, not a link pass: it reports its 0 rows
            counts = {
                "migrated": {**job["migrated"], step: 0},
                "failed": {**job["failed"], step: 0},
            }
        self.record.save(current_table=step, checkpoints=job["checkpoints"], **counts)
        return True

    def _copy_pages(
        self,
        plan: TablePlan,
        step: str,
        reader: TableReader,
        bulk: PageWriter,
        single: RowWriter,
        hasher: RowRenderer | None = None,
    ) -> bool:
        """Page through ``reader`` after the step's checkpoint; False when cancelled."""
        state = self.record.checkpoint(step)
        if state["done"]:
            return True
        self.record.save(current_table=step)
        if hasher is not None:
            state.setdefault("checksum", Checksum().to_json())
        after = key_from_json(plan, state["after"])
        # One thread writes page N (COPY, the server's work, the commit) while this one
        # reads and prepares page N + 1: the two cores of a small machine both work.
        with ThreadPoolExecutor(1, thread_name_prefix="ctxbase-migrate") as writer:
            pending: Future[None] | None = None
            while not self.cancel.is_set():
                with self.source.db.read() as connection:
                    page = reader.page(connection, after, self.batch_size)
                if not page.raw:
                    break
                prepared = prepare_page(bulk, page)
                digests = hasher.digests_or_none(page.raw, page.columns) if hasher else None
                if pending is not None:
                    pending.result()
                pending = writer.submit(
                    self._write_page, step, bulk, single, page, prepared, digests
                )
                after = page.last_key
            if pending is not None:
                pending.result()
        if self.cancel.is_set():
            return False
        state["done"] = True
        self.record.save(checkpoints=self.record.job["checkpoints"])
        return True

    def _write_page(
        self,
        step: str,
        bulk: PageWriter,
        single: RowWriter,
        page: Page,
        prepared: Any,
        digests: list[bytes | None] | None,
    ) -> None:
        with self.target.db.connect(write=True) as connection:
            # A commit lost to a crash is redone on resume: its checkpoint is lost too.
            self.target.db.backend.relax_durability(connection)
            failures = write_page(connection, bulk, single, page, prepared)
            if digests is not None:
                self._add_to_checksum(step, page, failures, digests)
            self._record_page(connection, step, page, failures)
        self.record.notify()

    def _add_to_checksum(
        self, step: str, page: Page, failures: list[RowFailure], digests: list[bytes | None]
    ) -> None:
        """Add the rows that arrived to the source checksum kept in the checkpoint."""
        state = self.record.job["checkpoints"][step]
        checksum = Checksum.from_json(state["checksum"])
        failed = {failure.key for failure in failures}
        arrived: list[bytes] = []
        for raw, digest in zip(page.raw, digests, strict=True):
            if failed and page.reader.key_of(raw) in failed:
                continue
            if digest is None:  # written, yet not renderable: verification will say so
                checksum.rows += 1
                continue
            arrived.append(digest)
        checksum.add_digests(arrived)
        state["checksum"] = checksum.to_json()

    def _bulk_writer(self, plan: TablePlan, columns: Sequence[Column[Any]]) -> PageWriter:
        if not self.target.db.backend.bulk_loads:
            return CoreInsertWriter(plan.table, columns)
        from_sqlite = self.source.db.backend.renders_stored_rows
        with self.target.db.connect() as connection:
            return PostgresCopyWriter(connection, plan.table, columns, from_sqlite=from_sqlite)

    def _record_page(
        self, connection: Connection, step: str, page: Page, failures: list[RowFailure]
    ) -> None:
        """Advance the checkpoint in the page's own transaction on the target."""
        state = self.record.record_failures(step, failures)
        state.update(
            after=key_to_json(page.last_key), rows=state["rows"] + len(page) - len(failures)
        )
        self.record.save_checkpoint(connection, step, progress=self.record.percent())
