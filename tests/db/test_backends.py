"""The backend objects: one vector-search signature and result on every backend, and
capabilities that say what each database has."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import ctxbase
from ctxbase.db.backends import backend_class
from ctxbase.db.schema import EMBEDDING_OWNER_COLUMNS, utcnow
from ctxbase.db.vectors.base import DISTANCES, Distance, VectorMatch, reference_scores
from ctxbase.embeddings.hashing import HashEmbedder
from ctxbase.errors import ConfigurationError
from ctxbase.records import SearchFilters
from ctxbase.store.embedding import KIND_TABLES, embeddings_table
from ctxbase.store.search_conditions import item_conditions

TEXTS = [
    "deploy the staging cluster",
    "the cluster runs out of memory",
    "lunch menu: soup and bread",
    "staging deploy failed at noon",
]


@pytest.mark.parametrize("distance", DISTANCES)
def test_vector_search_has_one_shape_and_the_reference_scores(
    store: ctxbase.Store, distance: Distance
) -> None:
    units = {store.contexts.add(f"doc-{i}", t).id: t for i, t in enumerate(TEXTS)}
    embedder = HashEmbedder(64)
    query = embedder.embed(["staging deploy"])[0]
    scores = reference_scores(embedder.embed(list(units.values())), query, distance)
    expected = {item_id: float(score) for item_id, score in zip(units, scores, strict=True)}
    backend, model = store.db.backend, store.embeddings.model
    assert model is not None
    backend.prepare_vector_search(store.db, model, 64, distance)
    conditions = item_conditions(
        "context", SearchFilters(), "default", "default", utcnow(), backend
    )
    assert conditions is not None
    owner = embeddings_table.c[EMBEDDING_OWNER_COLUMNS["context"]]
    items = KIND_TABLES["context"]
    found = backend.vector_search(store.db, conditions, items, owner, model, query, distance, 3)
    assert [match.item_id for match in found] == sorted(expected, key=lambda i: -expected[i])[:3]
    for match in found:
        assert isinstance(match, VectorMatch)
        assert match.score == pytest.approx(expected[match.item_id], abs=1e-5)
        assert match.item["id"] == match.item_id
        assert match.item["content"] == units[match.item_id]


def test_capabilities_say_what_the_database_has(store: ctxbase.Store, backend: str) -> None:
    db = store.db
    assert db.backend_name == store.backend == db.url.backend
    assert type(db.backend) is backend_class(db.backend_name)
    assert db.backend.has_vector_type == (backend == "postgres")
    if backend.startswith("postgres"):
        with db.connect() as connection:
            extension = connection.execute(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            ).scalar()
        # postgres-novector's database really lacks the extension
        assert extension == (1 if backend == "postgres" else 0)


def test_an_unknown_backend_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        backend_class("oracle")
