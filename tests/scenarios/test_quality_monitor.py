"""The conversation-quality monitor (reference system 002) moves in.

Its guide sets up seven tables, checks the connection and pgvector, applies, inspects and
rolls back migrations, queries similar messages, keeps health scores in 0 to 100, filters
by health score and citation status, deletes a conversation with everything of it,
tunes the pool, backs up, restores and watches sizes. Each step here is ctxbase's public
API doing the same, on an SQLite file and on PostgreSQL (where the guide's SQLite had no
vector search, ctxbase's has).

Its seven tables map onto ctxbase's records as follows:

- ``conversations`` → conversations: ``title``; the guide's ``topic`` is ``task``; the
  user is ``metadata["user_id"]``; ``health_score`` (0 to 100) as it is.
- ``messages`` → messages; an agent message's quality scores go in its ``metadata``.
- ``message_embeddings`` → the messages' stored vectors (the embedder's dimensions, 1536
  with ``openai:text-embedding-3-small``), searched by ``store.search(kinds=["message"])``.
- ``conversation_quality`` → ``store.quality`` metrics (metric, value, details,
  measured_at); ``contradictions``, ``conversation_loops`` and ``message_citations`` →
  ``store.quality`` contradictions, repetition loops and citations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import ctxbase
from ctxbase.db import migrate
from ctxbase.errors import InvalidInputError, NotFoundError
from ctxbase.records.imports import mapped_id
from tests.conftest import open_store
from tests.scenarios.conftest import cli, ok, serve

#: The revision before the one that made the quality tables (0009).
QUALITY_REVISION_BEFORE = "0008"
QUALITY_TABLES = ("quality_metrics", "contradictions", "repetition_loops", "citations")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def table_rows(url: str) -> dict[str, int]:
    figures = json.loads(ok("stats", "-d", url, "--json"))
    return {table["table"]: table["rows"] for table in figures["tables"]}


def debate(api: Any, *, user: str = "u-7", topic: str = "VAT on invoices") -> dict[str, Any]:
    """A monitored multi-agent conversation with every kind of quality record.

    ``api`` is a Store or a Client: the same calls either way."""
    chat = api.conversations.create(
        title="Invoice VAT debate", task=topic, metadata={"user_id": user}
    )
    turns = api.messages.append_many(
        chat.id,
        [
            {"role": "user", "content": "Is VAT charged on the gross or the net amount?"},
            {
                "role": "assistant",
                "content": "VAT is charged on the net amount of the invoice.",
                "metadata": {"agent": "tax-expert", "quality_score": 0.92},
            },
            {
                "role": "assistant",
                "content": "VAT is charged on the gross amount of the invoice.",
                "metadata": {"agent": "generalist", "quality_score": 0.41},
            },
            {"role": "user", "content": "Which one is it? Please cite the rule."},
        ],
    )
    ask, net, gross, again = turns
    metrics = [
        api.quality.add_metric(
            chat.id, metric="coherence", value=0.8, measured_at=T0, details={"judge": "j1"}
        ),
        api.quality.add_metric(chat.id, metric="relevance", value=0.9, measured_at=T0),
        api.quality.add_metric(
            chat.id, metric="coherence", value=0.4, measured_at=T0 + timedelta(minutes=5)
        ),
        api.quality.add_metric(
            chat.id, metric="accuracy", value=0.5, measured_at=T0 + timedelta(minutes=5)
        ),
    ]
    clash = api.quality.add_contradiction(
        chat.id,
        first_message_id=net.id,
        second_message_id=gross.id,
        description="net or gross",
        severity="high",
    )
    minor = api.quality.add_contradiction(
        chat.id,
        first_message_id=ask.id,
        second_message_id=again.id,
        description="the question changed",
        severity="low",
    )
    loop = api.quality.add_loop(chat.id, pattern="Which one is it?", message_ids=[ask.id, again.id])
    cited = api.quality.add_citation(
        chat.id,
        message_id=net.id,
        source_reference="https://example.com/vat-directive#art-73",
        quoted_text="the taxable amount shall include everything which constitutes consideration",
    )
    uncited = api.quality.add_citation(
        chat.id, message_id=gross.id, source_reference="forum post, 2019"
    )
    return {
        "chat": chat,
        "messages": turns,
        "metrics": metrics,
        "contradictions": [clash, minor],
        "loop": loop,
        "citations": [cited, uncited],
    }


# --- Verify the connection, migrations ----------------------------------------------------


def test_check_connection_and_pgvector(database_url: str, backend: str) -> None:
    """``check_db_connection()`` and ``check_pgvector_extension()``: the library's
    ``check_connection`` and ``ctxbase doctor``."""
    with open_store(database_url) as store:
        report = store.check_connection()
    assert report.status == "ok" and report.schema_revision == report.head_revision
    doctor = json.loads(ok("doctor", "--json", "-d", database_url))
    assert doctor["status"] == "ok"
    if backend == "postgres":
        assert report.pgvector and report.vector_storage != "bytes", report
        assert doctor["pgvector"]
    else:  # the guide's SQLite had no vector search; ctxbase stores vectors as bytes
        assert report.pgvector is None and report.vector_storage == "bytes"


def test_apply_inspect_and_roll_back_migrations(database_url: str) -> None:
    """``alembic upgrade head | current | history | downgrade -1 | downgrade REV |
    downgrade base`` are ``ctxbase db …``; quality data survives going back to head only
    if its tables were not dropped, and everything else survives."""
    head = migrate.head_revision()
    revisions = [revision.revision for revision in migrate.history()]
    assert revisions[0] == head or revisions[-1] == head
    ok("db", "upgrade", "-d", database_url)
    assert f"{head} (up to date)" in ok("db", "current", "-d", database_url)
    listed = ok("db", "history")  # the package's revisions: no database needed
    assert all(revision in listed for revision in revisions)

    with open_store(database_url, auto_migrate=False) as store:
        data = debate(store)
    chat_id = data["chat"].id

    down = {r.revision: r.down_revision for r in migrate.history()}
    previous = down[head]
    assert previous is not None
    ok("db", "downgrade", "-1", "-d", database_url)  # rollback one step
    assert previous in ok("db", "current", "-d", database_url)
    with open_store(database_url, auto_migrate=False) as store:  # the data is kept
        assert len(store.quality.list_contradictions(chat_id).items) == 2
    ok("db", "upgrade", "-d", database_url)
    # Rollback to a specific revision: the one before the quality tables (0009) came.
    ok("db", "downgrade", QUALITY_REVISION_BEFORE, "-d", database_url)
    assert QUALITY_REVISION_BEFORE in ok("db", "current", "-d", database_url)
    assert "quality_metrics" not in table_rows(database_url)  # dropped with its revision
    ok("db", "upgrade", "-d", database_url)
    # "relation already exists" cannot happen: upgrading again is no error.
    ok("db", "upgrade", "-d", database_url)
    with open_store(database_url, auto_migrate=False) as store:
        assert store.conversations.get(chat_id).task == "VAT on invoices"  # data kept
        assert store.quality.list_metrics(chat_id).items == []  # the rolled-back table's
        assert len(store.messages.list(chat_id).items) == 4

    first = revisions[-1] if revisions[0] == head else revisions[0]
    ok("db", "downgrade", first, "-d", database_url)  # rollback to a specific revision
    assert first in ok("db", "current", "-d", database_url)
    ok("db", "downgrade", "base", "-d", database_url)  # rollback all
    assert table_rows_or_none(database_url) is None
    ok("db", "upgrade", "-d", database_url)  # and back: an empty store at head
    with open_store(database_url, auto_migrate=False) as store:
        assert store.conversations.list().items == []
        debate(store)  # every table is there again


def table_rows_or_none(url: str) -> dict[str, int] | None:
    """Rows per table, or None when ``ctxbase stats`` finds no ctxbase schema."""
    result = cli("stats", "-d", url, "--json")
    if result.exit_code != 0:
        return None
    rows = {t["table"]: t["rows"] for t in json.loads(result.stdout)["tables"]}
    return rows or None


# --- Database models and queries ---------------------------------------------------------


def test_seven_tables_and_their_queries(store: ctxbase.Store) -> None:
    """Every table's columns, and the queries its indexes serve: conversations by user and
    date, messages in order, similar messages, health score filters, citations by status,
    contradictions by status and severity, the metric time series by name and time."""
    data = debate(store)
    chat, (ask, net, gross, again) = data["chat"], data["messages"]
    other = debate(store, user="u-8", topic="Rounding rules")["chat"]

    # conversations: by user and date
    mine = store.conversations.list(
        metadata={"user_id": "u-7"}, created_after=datetime.now(UTC) - timedelta(hours=1)
    ).items
    assert [c.id for c in mine] == [chat.id]
    assert store.conversations.get(chat.id).title == "Invoice VAT debate"
    # messages: ordered within the conversation, with their quality scores
    listed = store.messages.list(chat.id).items
    assert [m.id for m in listed] == [ask.id, net.id, gross.id, again.id]
    assert [m.position for m in listed] == [1, 2, 3, 4]
    assert listed[1].metadata == {"agent": "tax-expert", "quality_score": 0.92}
    # message_embeddings: "find similar messages", within one conversation or across all
    similar = store.search(
        net.content,
        kinds=["message"],
        mode="vector",
        threshold=0.3,
        filters={"conversation_id": str(chat.id)},
    ).hits
    # (a message's vector holds the two turns before it: its next turns rank beside it)
    assert net.id in [hit.id for hit in similar[:3]]
    assert {hit.retrieval_method for hit in similar} == {"vector"}
    assert {hit.item.conversation_id for hit in similar} == {chat.id}
    across = store.search(
        "VAT net amount invoice", kinds=["message"], mode="vector", k=10, threshold=0.3
    )
    assert {hit.item.conversation_id for hit in across.hits} == {chat.id, other.id}

    # health_score: 0-100, and filters on it
    with pytest.raises(InvalidInputError):
        store.conversations.update(chat.id, health_score=101)
    with pytest.raises(InvalidInputError):
        store.conversations.update(chat.id, health_score=-1)
    store.conversations.update(chat.id, health_score=35)
    store.conversations.update(other.id, health_score=88)
    assert [c.id for c in store.conversations.list(max_health=49).items] == [chat.id]
    assert [c.id for c in store.conversations.list(min_health=50).items] == [other.id]
    assert len(store.conversations.list(min_health=0, max_health=100).items) == 2

    # conversation_quality: the time series, by metric and time range
    series = store.quality.list_metrics(chat.id, metric="coherence").items
    assert [(m.value, m.measured_at) for m in series] == [
        (0.8, T0),
        (0.4, T0 + timedelta(minutes=5)),
    ]
    assert series[0].details == {"judge": "j1"}
    later = store.quality.list_metrics(chat.id, since=T0 + timedelta(minutes=1)).items
    assert sorted(m.metric for m in later) == ["accuracy", "coherence"]
    assert len(store.quality.list_metrics(chat.id, until=T0 + timedelta(minutes=1)).items) == 2

    # contradictions: open ones by severity, then resolved
    clash, minor = data["contradictions"]
    high = store.quality.list_contradictions(chat.id, status="open", severity="high").items
    assert [c.id for c in high] == [clash.id]
    resolved = store.quality.update_contradiction(chat.id, clash.id, status="resolved")
    assert resolved.resolved_at is not None
    store.quality.update_contradiction(chat.id, minor.id, status="dismissed")
    assert store.quality.list_contradictions(chat.id, status="open").items == []
    with pytest.raises(InvalidInputError):  # only the guide's statuses
        store.quality.update_contradiction(chat.id, minor.id, status="ignored")  # type: ignore[arg-type]

    # conversation_loops
    (loop,) = store.quality.list_loops(chat.id).items
    assert (loop.pattern, loop.message_ids, loop.occurrences) == (
        "Which one is it?",
        [ask.id, again.id],
        2,
    )
    assert (loop.first_position, loop.last_position) == (1, 4)

    # message_citations: verification and the status filter
    cited, uncited = data["citations"]
    assert cited.status == "pending" and cited.verified_at is None
    verified = store.quality.update_citation(chat.id, cited.id, status="verified", note="ok")
    assert verified.verified_at is not None and verified.note == "ok"
    store.quality.update_citation(chat.id, uncited.id, status="unverifiable")
    by_status = store.quality.list_citations(chat.id, status="verified").items
    assert [c.id for c in by_status] == [cited.id]
    assert [c.id for c in store.quality.list_citations(chat.id, message_id=gross.id).items] == [
        uncited.id
    ]
    store.quality.update_citation(chat.id, uncited.id, status="failed")
    assert store.quality.list_citations(chat.id, status="pending").items == []

    # A record naming another conversation's message is refused.
    foreign = store.messages.list(other.id).items[0]
    with pytest.raises(InvalidInputError):
        store.quality.add_citation(chat.id, message_id=foreign.id, source_reference="x")


def test_health_score_and_loop_detection(store: ctxbase.Store) -> None:
    """Beyond storage: the health score from the latest metrics, and loops found in the
    stored turns."""
    data = debate(store)
    chat = data["chat"]
    report = store.quality.compute_health(chat.id, save=True)
    # latest values: coherence 0.4, relevance 0.9, accuracy 0.5 (consistency unmeasured)
    exact = 100 * (0.3 * 0.4 + 0.25 * 0.9 + 0.25 * 0.5) / (0.3 + 0.25 + 0.25)
    assert abs(report.exact - exact) < 1e-9 and report.health_score == round(exact)
    assert store.conversations.get(chat.id).health_score == report.health_score
    assert [c.id for c in store.conversations.list(max_health=report.health_score).items] == [
        chat.id
    ]

    for _ in range(3):
        store.messages.append(
            chat.id, role="assistant", content="Let me check the VAT directive again."
        )
    found = store.quality.detect_loops(chat.id, save=True)
    assert len(found.loops) == 1
    loop = found.loops[0]
    assert (loop.role, loop.occurrences, loop.first_position, loop.last_position) == (
        "assistant",
        3,
        5,
        7,
    )
    saved = store.quality.list_loops(chat.id).items
    assert len(saved) == 2  # the one added by hand stays beside the detected one


# --- Cascade deletes ---------------------------------------------------------------------


def test_deleting_a_conversation_removes_everything_of_it(database_url: str) -> None:
    """ "Deleting a conversation automatically removes all messages, embeddings, quality
    metrics, contradictions, loop detections and citations" — and nothing of it is found
    by search afterwards, while another conversation keeps all of its own."""
    with open_store(database_url) as store:
        doomed = debate(store)
        kept = debate(store, user="u-8", topic="Rounding rules")
        before = table_rows(database_url)
        assert before["embeddings"] >= 8 and all(before[t] >= 2 for t in QUALITY_TABLES)

        store.conversations.delete(doomed["chat"].id)

        after = table_rows(database_url)
        assert after["conversations"] == 1
        assert after["messages"] == 4
        assert after["embeddings"] == before["embeddings"] - 4
        for name in QUALITY_TABLES:
            assert after[name] == before[name] // 2, name
        with pytest.raises(NotFoundError):
            store.quality.list_metrics(doomed["chat"].id)
        for message in doomed["messages"]:
            with pytest.raises(NotFoundError):
                store.messages.get(message.id)
        for mode in ("vector", "text", "hybrid"):
            hits = store.search(
                "VAT charged net gross amount invoice",
                kinds=["message"],
                mode=mode,
                threshold=0.0 if mode == "vector" else None,
                k=50,
            ).hits
            assert hits and {h.item.conversation_id for h in hits} == {kept["chat"].id}, mode
        assert len(store.quality.list_citations(kept["chat"].id).items) == 2


# --- Over the server, as the application uses it ----------------------------------------


def test_quality_records_over_rest(store: ctxbase.Store) -> None:
    """The same records and filters through ``ctxbase.Client`` against a live server."""
    with serve(store) as server, server.client() as client:
        data = debate(client)
        chat = data["chat"]
        clash = data["contradictions"][0]
        client.quality.update_contradiction(chat.id, clash.id, status="resolved")
        assert [
            c.id for c in client.quality.list_contradictions(chat.id, status="resolved").items
        ] == [clash.id]
        cited = data["citations"][0]
        client.quality.update_citation(chat.id, cited.id, status="verified")
        assert [c.id for c in client.quality.list_citations(chat.id, status="verified").items] == [
            cited.id
        ]
        assert [
            m.metric for m in client.quality.list_metrics(chat.id, metric="accuracy").items
        ] == ["accuracy"]
        report = client.quality.compute_health(chat.id, save=True)
        assert client.conversations.get(chat.id).health_score == report.health_score
        assert [c.id for c in client.conversations.list(max_health=report.health_score).items] == [
            chat.id
        ]
        client.quality.delete_metric(chat.id, data["metrics"][0].id)
        assert len(client.quality.list_metrics(chat.id).items) == 3
        client.conversations.delete(chat.id)
        with pytest.raises(NotFoundError):
            client.quality.list_citations(chat.id)
    assert store.conversations.list().items == []


# --- Production: pooling, backup, monitoring --------------------------------------------


def test_pool_backup_restore_and_sizes(database_url: str, backend: str, tmp_path: Path) -> None:
    """Connection pooling as the guide sets it, ``pg_dump``/``psql`` backup and restore as
    ``ctxbase backup``/``restore``, and "Check Database Size" as ``ctxbase stats``."""
    with open_store(  # the guide's pool, and its HNSW parameters (m = 16, ef_construction = 64)
        database_url,
        pool_size=10,
        max_overflow=20,
        pool_recycle=3600,
        pool_pre_ping=True,
        hnsw_m=16,
        hnsw_ef_construction=64,
    ) as store:
        assert (store.settings.pool_size, store.settings.max_overflow) == (10, 20)
        assert store.check_connection().status == "ok"
        data = debate(store)
    backup = tmp_path / "backup.dump"
    ok("backup", "-o", str(backup), "-d", database_url, "--quiet")
    with open_store(database_url) as store:
        store.conversations.delete(data["chat"].id)
    ok("restore", str(backup), "--yes", "--quiet", "-d", database_url)
    with open_store(database_url) as store:
        chat_id = data["chat"].id
        assert len(store.quality.list_contradictions(chat_id).items) == 2
        assert len(store.quality.list_citations(chat_id).items) == 2
        assert store.search("gross amount", kinds=["message"], mode="text").hits

    figures = json.loads(ok("stats", "--json", "-d", database_url))
    sizes = {t["table"]: t["bytes"] for t in figures["tables"]}
    for name in ("conversations", "messages", "embeddings"):
        assert sizes[name] > 0, name
    (default,) = figures["projects"]
    assert (default["tenant"], default["project"]) == ("default", "default")
    assert default["rows"]["contradictions"] == 2 and default["bytes"] > 0


# --- Moving in ----------------------------------------------------------------------------------


def test_moving_in_then_adding_the_quality_records(store: ctxbase.Store) -> None:
    """Its conversations and messages come over as rows (integer ids mapped, health scores
    and times kept); its quality records then go through the quality API, naming them by
    their new ids, metrics keeping their ``measured_at``."""
    rows: list[dict[str, Any]] = []
    for n, health in ((1, 35), (2, 92)):
        rows.append(
            {
                "kind": "conversation",
                "id": n,
                "title": f"Debate {n}",
                "task": "VAT on invoices",
                "health_score": health,
                "metadata": {"user_id": "u-7", "status": "closed"},
                "created_at": f"2025-06-0{n}T08:00:00Z",
            }
        )
        for i, (agent, text) in enumerate(
            [
                ("tax-expert", "VAT is charged on the net amount."),
                ("generalist", "VAT is charged on the gross amount."),
            ]
        ):
            rows.append(
                {
                    "kind": "message",
                    "id": n * 100 + i,
                    "conversation_id": n,
                    "role": "assistant",
                    "content": text,
                    "metadata": {"agent": agent, "quality_score": 0.9 - i / 2},
                    "created_at": f"2025-06-0{n}T08:0{i + 1}:00Z",
                }
            )
    report = store.imports.rows(rows)
    assert report.written == {"conversation": 2, "message": 4}
    chat = report.ids["conversation"]["1"]
    assert chat == mapped_id("conversation", 1)
    low = store.conversations.list(max_health=49).items
    assert [(c.id, c.health_score, c.created_at) for c in low] == [
        (chat, 35, datetime(2025, 6, 1, 8, tzinfo=UTC))
    ]

    net, gross = mapped_id("message", 100), mapped_id("message", 101)
    store.quality.add_metric(
        chat, metric="coherence", value=0.3, measured_at=datetime(2025, 6, 1, 9, tzinfo=UTC)
    )
    store.quality.add_contradiction(
        chat,
        first_message_id=net,
        second_message_id=gross,
        description="net or gross",
        severity="high",
        status="open",
    )
    store.quality.add_citation(
        chat,
        message_id=net,
        source_reference="directive art. 73",
        status="verified",
        note="checked by hand",
    )
    store.quality.add_loop(chat, pattern="VAT is charged", message_ids=[net, gross])
    (metric,) = store.quality.list_metrics(chat, until=datetime(2025, 6, 2, tzinfo=UTC)).items
    assert metric.measured_at == datetime(2025, 6, 1, 9, tzinfo=UTC)
    assert store.quality.list_citations(chat, status="verified").items[0].verified_at
    assert store.quality.list_loops(chat).items[0].first_position == 1
    with pytest.raises(InvalidInputError):  # the other conversation's message
        store.quality.add_citation(chat, message_id=mapped_id("message", 200), source_reference="x")
    store.conversations.delete(chat)
    hits = store.search("VAT charged amount", kinds=["message"], mode="text").hits
    assert {h.item.conversation_id for h in hits} == {mapped_id("conversation", 2)}
