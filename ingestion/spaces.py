"""Embedding spaces: one partition of the chunk table per (assistant, embedding model).

Each partition gets its own HNSW index on ``embedding::vector(dims)`` (``halfvec`` above 2,000
dimensions, pgvector's limit for ``vector`` indexes), and inherits the parent's BM25 index, so an
assistant's searches read only its own graph and its own term statistics.
"""
from __future__ import annotations

import functools

from django.db import connection, transaction

from assistants.models import Assistant
from ingestion.models import EmbeddingSpace

VECTOR_INDEX_MAX_DIMS = 2000
HALFVEC_INDEX_MAX_DIMS = 4000


def vector_type(dims: int) -> str:
    """The SQL type that vectors of ``dims`` dimensions are indexed and compared as."""
    if dims > HALFVEC_INDEX_MAX_DIMS:
        raise ValueError(f"{dims} dimensions: truncate to at most {HALFVEC_INDEX_MAX_DIMS} (MRL) first")
    return f"vector({dims})" if dims <= VECTOR_INDEX_MAX_DIMS else f"halfvec({dims})"


def vector_literal(values) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in values) + "]"


@functools.cache
def lexical_backend() -> str:
    """'bm25' when the chunk table has its pg_textsearch index, else 'fts' (built-in full text)."""
    with connection.cursor() as cursor:
        cursor.execute("select 1 from pg_indexes where indexname = 'ingestion_chunk_bm25'")
        return "bm25" if cursor.fetchone() else "fts"


def space_create(*, assistant: Assistant, model_name: str, dims: int, active: bool) -> EmbeddingSpace:
    """A new space with its partition and vector index, active or building."""
    status = EmbeddingSpace.Status.ACTIVE if active else EmbeddingSpace.Status.BUILDING
    with transaction.atomic():
        space = EmbeddingSpace.objects.create(assistant=assistant, model_name=model_name, dims=dims, status=status)
        table = space.partition_name
        kind = vector_type(dims)
        ops = "vector_cosine_ops" if kind.startswith("vector") else "halfvec_cosine_ops"
        with connection.cursor() as cursor:
            cursor.execute(f"create table {table} partition of ingestion_chunk for values in ({int(space.pk)})")
            cursor.execute(
                f"create index {table}_hnsw on {table} using hnsw ((embedding::{kind}) {ops}) "
                "with (m = 16, ef_construction = 64)"
            )
    return space


def space_drop(*, space: EmbeddingSpace) -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"drop table if exists {space.partition_name}")
        space.delete()


def spaces_for_indexing(assistant_id: int) -> list[EmbeddingSpace]:
    """Every space new chunks must be written to: the active one and any being built."""
    return list(
        EmbeddingSpace.objects.filter(assistant_id=assistant_id)
        .exclude(status=EmbeddingSpace.Status.RETIRED)
        .order_by("id")
    )


def space_active(assistant_id: int) -> EmbeddingSpace | None:
    return EmbeddingSpace.objects.filter(assistant_id=assistant_id, status=EmbeddingSpace.Status.ACTIVE).first()
