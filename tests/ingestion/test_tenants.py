"""Tenant isolation at the index: a small assistant beside a huge one still gets k rows from its own
graph, as good as an exact scan, because each space is a partition with its own HNSW index.

Synthetic chunks (clustered unit vectors, made-up words) are written with COPY by the same helpers
as ``bench_retrieval``; the exact reference here is the test's own SQL: the space's rows ordered by
cosine distance with index scans off.
"""

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assistants.management.commands.bench_retrieval import load_chunks, synthetic_chunks, synthetic_query, vocabulary
from assistants.management.commands.evaluate_retrieval import remove
from ingestion.search.hybrid import Fusion, chunk_search
from ingestion.spaces import space_active, vector_literal
from tests.factories import make_assistant

SMALL, HUGE, QUERIES, K = 20, 12000, 20, 10


@pytest.fixture(scope="module")
def tenants(django_db_setup, django_db_blocker):
    """A 20-chunk assistant (one chunk per page) beside a 12,000-chunk one, committed for the module."""
    rng = np.random.default_rng(7)
    words = vocabulary()
    made = {}
    with django_db_blocker.unblock():
        for name, count, per_document in (("small", SMALL, 1), ("huge", HUGE, 10)):
            assistant = make_assistant()
            space = space_active(assistant.pk)
            vectors, texts = synthetic_chunks(rng, count, space.dims, words)
            load_chunks(space, vectors, texts, name, per_document)
            queries = [synthetic_query(rng, vectors[i], texts[i]) for i in rng.choice(count, QUERIES, replace=False)]
            made[name] = (assistant, space, queries)
    yield made
    with django_db_blocker.unblock():
        for assistant, _, _ in made.values():
            remove(assistant.team, assistant.team.memberships.get().user)


@pytest.fixture(autouse=True)
def _db(db):
    pass


def exact_ids(space, vector, limit: int = K) -> list[int]:
    """The space's nearest chunks by cosine distance, every row read (no index)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("set local enable_indexscan = off")
        cursor.execute("set local enable_bitmapscan = off")
        cursor.execute(
            "select id from ingestion_chunk where space_id = %s order by embedding::vector(384) <=> %s::vector(384)"
            " limit %s",
            [space.pk, vector_literal(vector), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def space_ids(space) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("select id from ingestion_chunk where space_id = %s", [space.pk])
        return {row[0] for row in cursor.fetchall()}


def recall(found: list[int], expected: list[int]) -> float:
    return len(set(found) & set(expected)) / len(expected)


def test_pgvector_has_iterative_index_scans():
    with connection.cursor() as cursor:
        cursor.execute("select extversion from pg_extension where extname = 'vector'")
        version = tuple(int(part) for part in cursor.fetchone()[0].split(".")[:2])
        cursor.execute("select setting, enumvals from pg_settings where name = 'hnsw.iterative_scan'")
        row = cursor.fetchone()
    assert version >= (0, 8)
    assert row is not None and "relaxed_order" in row[1]


@pytest.mark.parametrize("name", ["small", "huge"])
def test_dense_search_returns_k_rows_of_its_own_space_as_good_as_an_exact_scan(tenants, name):
    _, space, queries = tenants[name]
    own = space_ids(space)
    recalls = []
    for vector, text in queries:
        hits = chunk_search(space=space, query=text, vector=vector, k=K, mode="dense", per_document=None)
        assert len(hits) == K
        assert {hit.chunk_id for hit in hits} <= own
        expected = exact_ids(space, vector)
        # the selectors' exact mode (the benchmark's baseline) is this same exact scan
        exact = chunk_search(space=space, query=text, vector=vector, k=K, mode="dense", per_document=None, exact=True)
        assert [hit.chunk_id for hit in exact] == expected
        recalls.append(recall([hit.chunk_id for hit in hits], expected))
    assert np.mean(recalls) >= 0.95, recalls


@pytest.mark.parametrize("fusion", [Fusion("rrf"), Fusion("weighted", 0.5)], ids=["rrf", "weighted"])
def test_hybrid_search_returns_k_rows_as_good_as_with_an_exact_dense_leg(tenants, fusion):
    """On the small assistant beside the huge one (hybrid recall at scale is `make bench-retrieval`'s)."""
    _, space, queries = tenants["small"]
    own = space_ids(space)
    recalls = []
    for vector, text in queries:
        hits = chunk_search(space=space, query=text, vector=vector, k=K, fusion=fusion)
        assert len(hits) == K
        assert {hit.chunk_id for hit in hits} <= own
        assert max(sum(hit.document_id == other.document_id for other in hits) for hit in hits) <= 2
        exact = chunk_search(space=space, query=text, vector=vector, k=K, fusion=fusion, exact=True)
        recalls.append(recall([hit.chunk_id for hit in hits], [hit.chunk_id for hit in exact]))
    assert np.mean(recalls) >= 0.95, recalls


def dense_plan(space, vector, k: int) -> tuple[list[str], str, str]:
    """The statements a dense search runs, its vector query, and that query's plan under the search's
    own settings."""
    with CaptureQueriesContext(connection) as captured:
        chunk_search(space=space, query="", vector=vector, k=k, mode="dense", per_document=None)
    statements = [query["sql"] for query in captured.captured_queries]
    search = next(sql for sql in statements if "<=>" in sql)
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            if statement.startswith("set local"):
                cursor.execute(statement)
        cursor.execute("explain " + search)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return statements, search, plan


@pytest.mark.parametrize("k, ef_search", [(K, 100), (200, 200)])
def test_the_dense_leg_sets_ef_search_and_iterative_scan(tenants, k, ef_search):
    _, space, queries = tenants["huge"]
    statements, _, _ = dense_plan(space, queries[0][0], k)
    settings = next(statement for statement in statements if "hnsw.ef_search" in statement)  # one statement, local
    assert f"set_config('hnsw.ef_search', '{ef_search}', true)" in settings
    assert "set_config('hnsw.iterative_scan', 'relaxed_order', true)" in settings


def test_the_huge_assistant_walks_its_own_graph(tenants):
    _, space, queries = tenants["huge"]
    _, small_space, _ = tenants["small"]
    _, search, plan = dense_plan(space, queries[0][0], K)
    assert space.partition_name in search and small_space.partition_name not in search
    assert f"Index Scan using {space.partition_name}_hnsw" in plan, plan
    assert small_space.partition_name not in plan


def test_the_small_assistant_is_read_exactly_and_alone(tenants):
    """On a partition of a few rows the planner prefers reading them all to the graph: exact results,
    and nothing of the huge partition beside it."""
    _, small_space, queries = tenants["small"]
    _, huge_space, _ = tenants["huge"]
    _, _, plan = dense_plan(small_space, queries[0][0], K)
    assert f"Seq Scan on {small_space.partition_name}" in plan, plan
    assert huge_space.partition_name not in plan
