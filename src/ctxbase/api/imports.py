"""Declarations of moving in: rows of another system imported with their ids, timestamps
and links (``docs/moving-in.md``)."""

from __future__ import annotations

from ctxbase.api.spec import Operation
from ctxbase.records.imports import ImportReport, RowsImport

P = "/projects/{project}"

# fmt: off
IMPORT_OPERATIONS = (
    Operation("imports.rows", "POST", f"{P}/import", "write",
        "Import rows of another system keeping their ids, timestamps and links; each batch "
        "all or nothing", result=ImportReport, body=RowsImport, args=("rows",)),
)
# fmt: on
