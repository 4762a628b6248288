"""Declarations of the calls an agent makes around each model call: ``recall`` (the
prompt-ready context for a query within a token budget) and ``stats`` (what a project
holds)."""

from __future__ import annotations

from ctxbase.api.spec import Operation
from ctxbase.records.recall import ProjectStats, RecallRequest, RecallResult

P = "/projects/{project}"

# fmt: off
RECALL_OPERATIONS = (
    Operation("recall", "POST", f"{P}/recall", "read",
        "The best memories, context units and recent messages for a query, deduplicated, "
        "ordered and trimmed to a token budget, as items and prompt-ready text",
        result=RecallResult, body=RecallRequest, args=("query",)),
    Operation("stats", "GET", f"{P}/stats", "read",
        "What the project holds: counts per kind and token totals", result=ProjectStats),
)
# fmt: on
