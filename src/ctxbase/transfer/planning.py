"""Recording a new migration job in its target: which tables, how many rows, and what the
target sets aside for the load."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ctxbase.config import Settings
from ctxbase.errors import ConflictError
from ctxbase.secrets import Secrets
from ctxbase.transfer import foreign_keys, indexes, jobs
from ctxbase.transfer.endpoints import Endpoint
from ctxbase.transfer.tables import TablePlan, count_rows, has_rows, plan_tables

DEFAULT_BATCH_SIZE = 2000


def record_job(
    source: Endpoint,
    target: Endpoint,
    *,
    tables: Sequence[str] | None,
    batch_size: int,
    reembed: bool,
    settings: Settings,
    job_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a new pending job in the target (which must hold none of its tables' rows)."""
    plans = plan_tables(tables)
    _require_empty(target, plans)
    with source.db.read() as connection:
        totals = {p.name: count_rows(connection, p) for p in plans}
    secrets = Secrets(settings)
    names = [p.name for p in plans]
    with target.db.connect(write=True) as connection:
        options: dict[str, Any] = {"batch_size": batch_size, "reembed": reembed}
        if target.db.backend == "postgresql":  # both back once the rows are in
            # (an empty table keeps them: nothing to load, nothing to build again)
            loaded = [name for name in names if totals[name]]
            options["deferred_indexes"] = indexes.set_aside(connection, loaded)
            options["deferred_foreign_keys"] = foreign_keys.set_aside(connection, loaded)
        return jobs.create_job(
            connection,
            {
                "id": job_id,
                "source": source.describe(),
                "target": target.describe(),
                "source_encrypted": secrets.encrypt(source.url) if source.url else None,
                "target_encrypted": secrets.encrypt(target.url) if target.url else None,
                "tables": names,
                "options": options,
                "totals": totals,
            },
        )


def _require_empty(target: Endpoint, plans: list[TablePlan]) -> None:
    with target.db.read() as connection:  # one connection for every table
        holding = [p.name for p in plans if has_rows(connection, p)]
    if holding:
        raise ConflictError(
            f"The target database already holds rows in: {', '.join(holding)}",
            hint="migrate into an empty database (e.g. after `ctxbase db reset`), or resume "
            "a job with --resume",
            details={"tables": holding},
        )
