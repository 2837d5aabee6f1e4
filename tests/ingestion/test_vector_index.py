"""An assistant's HNSW index is built once its partition is big enough; below, dense search reads
every row (exact) and storing chunks skips the graph's upkeep."""

import threading

import pytest
from django.db import connection, connections
from django.test import override_settings

from ingestion.search.hybrid import chunk_search
from ingestion.spaces import (
    space_active,
    vector_index_create,
    vector_index_exists,
    vector_index_if_due,
    vector_index_name,
)
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant

PAGES = ["api-guide/throttling", "api-guide/pagination", "api-guide/authentication"]


def page(name: str) -> dict[str, str]:
    return {f"http://docs.test/{name}/": (DRF_SITE / name / "index.html").read_text()}


def index_definitions(space) -> str:
    with connection.cursor() as cursor:
        cursor.execute("select indexdef from pg_indexes where tablename = %s", [space.partition_name])
        return " ".join(row[0] for row in cursor.fetchall())


def chunks_in(space) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"select count(*) from {space.partition_name}")
        return cursor.fetchone()[0]


def dense_ids(space, vector, **options) -> list[int]:
    return [
        hit.chunk_id
        for hit in chunk_search(space=space, query="", vector=vector, k=10, mode="dense", per_document=None, **options)
    ]


@pytest.mark.django_db
def test_a_small_assistant_has_bm25_and_no_graph_and_its_dense_search_is_exact(embedder):
    assistant = make_assistant()
    for name in PAGES:
        index_pages(assistant, page(name))
    space = space_active(assistant.pk)
    definitions = index_definitions(space)
    assert "bm25" in definitions and "hnsw" not in definitions
    vector = embedder.embed_queries(["How do I throttle anonymous users?"])[0]
    hits = dense_ids(space, vector)
    assert len(hits) == 10 and hits == dense_ids(space, vector, exact=True)


@pytest.mark.slow  # over 3 s alone: make test runs it, make test-fast does not
@pytest.mark.django_db
def test_the_graph_is_built_when_the_assistant_reaches_the_threshold(embedder):
    assistant = make_assistant()
    space = space_active(assistant.pk)
    index_pages(assistant, page(PAGES[0]))
    first = chunks_in(space)
    with override_settings(VECTOR_INDEX_MIN_CHUNKS=first + 1):
        assert not vector_index_if_due(space) and not vector_index_exists(space)
        index_pages(assistant, page(PAGES[1]))
    assert chunks_in(space) > first and vector_index_exists(space)
    definitions = index_definitions(space)
    assert f"{vector_index_name(space)} ON" in definitions and "hnsw" in definitions and "vector(384)" in definitions
    assert "m='16'" in definitions and "ef_construction='64'" in definitions
    # Chunks indexed afterwards go into the graph, and the graph finds them.
    index_pages(assistant, page(PAGES[2]))
    vector = embedder.embed_queries(["How do I use token authentication?"])[0]
    with connection.cursor() as cursor:
        cursor.execute("set enable_seqscan = off")  # the graph, not the planner's choice on a few rows
        try:
            hits = chunk_search(space=space, query="", vector=vector, k=5, mode="dense", per_document=None)
        finally:
            cursor.execute("reset enable_seqscan")
    assert hits and "/api-guide/authentication/" in hits[0].url


@pytest.mark.django_db
@override_settings(VECTOR_INDEX_MIN_CHUNKS=0)
def test_a_threshold_of_zero_builds_the_graph_with_the_space():
    assistant = make_assistant()
    assert vector_index_exists(space_active(assistant.pk))


@pytest.mark.django_db(transaction=True)
def test_two_workers_building_the_graph_at_once_make_one_index():
    # CREATE INDEX IF NOT EXISTS alone: both builds pass the check, one fails at commit on pg_class.
    assistant = make_assistant()
    index_pages(assistant, page(PAGES[0]))
    space = space_active(assistant.pk)
    start, errors = threading.Barrier(2), []

    def build():
        try:
            start.wait()
            vector_index_create(space)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=build) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert index_definitions(space).count("USING hnsw") == 1
