"""Which tables a transfer copies, in which order, keyed by what.

Tables are copied parents first (the schema's foreign-key order), each in primary-key
order so a copy can resume after the last key it committed. A column pointing back into
its own table (a context unit's ``superseded_by``) may point at a row copied later, so it
is copied empty and filled in by a second pass once every row is there.

Two administration tables stay behind: ``migration_jobs`` (each database keeps the jobs
that wrote into it) and ``database_configs`` (the databases one deployment knows, with
passwords encrypted under that deployment's key). ``database_configs`` can still be
chosen explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Table, func, select

from ctxbase.db.schema import metadata
from ctxbase.errors import InvalidInputError

#: Tables never copied: the job records of the database itself.
NEVER_COPIED = frozenset({"migration_jobs"})
#: Tables copied only when chosen by name.
ADMIN_TABLES = frozenset({"database_configs"})


@dataclass(frozen=True)
class TablePlan:
    """One table to copy: its Core table, its key, and its self-referencing columns."""

    table: Table
    key: Column[Any]
    self_references: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def link_step(self) -> str:
        """The name of the second pass filling in the self-referencing columns."""
        return f"{self.name}:links"


def data_tables() -> list[str]:
    """Every table copied by default, parents first."""
    return [
        t.name
        for t in metadata.sorted_tables
        if t.name not in NEVER_COPIED and t.name not in ADMIN_TABLES
    ]


def copyable_tables() -> list[str]:
    return [t.name for t in metadata.sorted_tables if t.name not in NEVER_COPIED]


def plan_tables(chosen: Iterable[str] | None = None) -> list[TablePlan]:
    """Plans for ``chosen`` tables (default: every data table), in foreign-key order."""
    names = data_tables() if chosen is None else list(dict.fromkeys(chosen))
    unknown = sorted(set(names) - set(copyable_tables()))
    if unknown:
        raise InvalidInputError(
            f"Unknown table(s): {', '.join(unknown)}",
            details={"unknown": unknown, "tables": copyable_tables()},
        )
    if not names:
        raise InvalidInputError("Choose at least one table to copy")
    wanted = set(names)
    return [_plan(t) for t in metadata.sorted_tables if t.name in wanted]


def _plan(table: Table) -> TablePlan:
    keys = list(table.primary_key.columns)
    if len(keys) != 1:  # every ctxbase table has a one-column key; keyset paging needs it
        raise InvalidInputError(f"Table {table.name} has no single-column primary key")
    self_refs = tuple(fk.parent.key for fk in table.foreign_keys if fk.column.table is table)
    return TablePlan(table=table, key=keys[0], self_references=self_refs)


def steps(plans: list[TablePlan]) -> list[str]:
    """The checkpointed steps of a copy: one per table, then the link passes."""
    return [p.name for p in plans] + [p.link_step for p in plans if p.self_references]


def has_rows(connection: Connection, plan: TablePlan) -> bool:
    return connection.execute(select(plan.key).limit(1)).first() is not None


def count_rows(connection: Connection, plan: TablePlan) -> int:
    return int(connection.execute(select(func.count()).select_from(plan.table)).scalar_one())
