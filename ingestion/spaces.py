"""Embedding spaces: one partition of the chunk table per (assistant, embedding model).

Each partition inherits the parent's BM25 index and gets its own HNSW index on
``embedding::vector(dims)`` (``halfvec`` above 2,000 dimensions, pgvector's limit for ``vector``
indexes), so an assistant's searches read only its own graph and its own term statistics.

The HNSW index is built once the partition holds ``VECTOR_INDEX_MIN_CHUNKS`` chunks (10,000 by
default). Below that, a search reads every row, which is exact and fast (10,000 rows of 384
dimensions: ~10 ms here), and indexing skips the graph's upkeep, the largest cost of storing chunks
(inserting 2,429 chunks: 3.4 s with the graph, 0.5 s without); building the graph at once afterwards
is cheaper than inserting into it row by row (10,000 rows: 3.8 s).
"""

from __future__ import annotations

import functools
import logging
import zlib
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction

from ingestion.models import EmbeddingSpace

if TYPE_CHECKING:
    from assistants.models import Assistant

logger = logging.getLogger(__name__)

VECTOR_INDEX_MAX_DIMS = 2000
HALFVEC_INDEX_MAX_DIMS = 4000


def vector_type(dims: int) -> str:
    """The SQL type that vectors of ``dims`` dimensions are indexed and compared as."""
    if dims > HALFVEC_INDEX_MAX_DIMS:
        raise ValueError(f"{dims} dimensions: truncate to at most {HALFVEC_INDEX_MAX_DIMS} (MRL) first")
    return f"vector({dims})" if dims <= VECTOR_INDEX_MAX_DIMS else f"halfvec({dims})"


def vector_literal(values) -> str:
    """pgvector's text form, 7 significant digits (one format call per vector: twice as fast as one per number)."""
    values = values.tolist() if hasattr(values, "tolist") else [float(x) for x in values]
    return _literal_format(len(values)) % tuple(values)


@functools.lru_cache(maxsize=16)
def _literal_format(dims: int) -> str:
    return "[" + ",".join(["%.7g"] * dims) + "]"


@functools.cache
def lexical_backend() -> str:
    """'bm25' when the chunk table has its pg_textsearch index, else 'fts' (built-in full text).

    ``LEXICAL_BACKEND=fts`` forces the fallback on a database that has BM25 (to measure it: the
    fallback reads no index of its own that BM25's table lacks, only slower without its GIN index)."""
    if settings.LEXICAL_BACKEND == "fts":
        return "fts"
    with connection.cursor() as cursor:
        cursor.execute("select 1 from pg_indexes where indexname = 'ingestion_chunk_bm25'")
        return "bm25" if cursor.fetchone() else "fts"


def lexical_status() -> dict:
    """The lexical leg in force, for the start-up log and the staff's dashboard: ``backend`` ('bm25' or
    'fts'), ``label``, ``detail`` and ``warning`` (True for the fallback, which retrieves worse)."""
    backend = lexical_backend()
    if backend == "bm25":
        with connection.cursor() as cursor:
            cursor.execute("select extversion from pg_extension where extname = 'pg_textsearch'")
            row = cursor.fetchone()
        version = f" {row[0]}" if row else ""
        return {
            "backend": backend,
            "label": f"BM25 (pg_textsearch{version})",
            "detail": "the lexical leg of hybrid search is BM25, as in development and the tests",
            "warning": False,
        }
    why = "LEXICAL_BACKEND=fts" if settings.LEXICAL_BACKEND == "fts" else "pg_textsearch is not installed"
    return {
        "backend": backend,
        "label": "PostgreSQL full-text search (fallback)",
        "why": why,
        "detail": f"{why}: the lexical leg is PostgreSQL's built-in full-text search, much weaker than BM25, "
        "so hybrid search leans on the vectors (docs/operations.md, BM25 on managed PostgreSQL)",
        "warning": True,
    }


def log_lexical_backend(process: str = "") -> None:
    """Say at start-up which lexical leg search uses (a warning for the fallback); never stops a start."""
    try:
        status = lexical_status()
    except Exception as error:  # the database is not there yet: the process starts anyway
        logger.warning("lexical search: could not be determined at start-up (%s)", error)
        return
    where = f" ({process})" if process else ""
    if status["warning"]:
        logger.warning("lexical search%s: %s: %s", where, status["label"], status["detail"])
    else:
        logger.info("lexical search%s: %s", where, status["label"])


def warm_models(process: str = "") -> None:
    """A web process loads the models its assistants search with as it starts (``EMBEDDING_WARM_UP``),
    not at its first visitors' questions: a process started into a burst (a deploy, a scale-out) otherwise
    answers its first questions seconds late. The most used models of the active spaces, else the
    default; API models need no loading."""
    if process != "web" or not settings.EMBEDDING_WARM_UP:
        return
    from django.db.models import Count

    from ingestion.embedding import API_PREFIXES, ENGINES_KEPT, get_embedder

    try:
        names = list(
            EmbeddingSpace.objects.filter(status=EmbeddingSpace.Status.ACTIVE)
            .values("model_name")
            .annotate(spaces=Count("id"))
            .order_by("-spaces")
            .values_list("model_name", flat=True)[:ENGINES_KEPT]
        )
    except Exception as error:  # the database is not there yet: the default model, and the start goes on
        logger.warning("model warm-up: the spaces could not be read (%s)", error)
        names = []
    for name in names or [""]:
        if name.startswith(API_PREFIXES):
            continue
        try:
            get_embedder(name).embed_queries(["warm up"])  # the first pass pays torch's own set-up
        except Exception as error:  # a model gone from its folder fails at its questions, not at the start
            logger.warning("model warm-up: %s could not be loaded (%s)", name or "the default model", error)


def space_create(*, assistant: Assistant, model_name: str, dims: int, active: bool) -> EmbeddingSpace:
    """A new space with its partition, active or building (its vector index comes with its chunks)."""
    status = EmbeddingSpace.Status.ACTIVE if active else EmbeddingSpace.Status.BUILDING
    with transaction.atomic():
        space = EmbeddingSpace.objects.create(assistant=assistant, model_name=model_name, dims=dims, status=status)
        with connection.cursor() as cursor:
            cursor.execute(
                f"create table {space.partition_name} partition of ingestion_chunk for values in ({int(space.pk)})"
            )
        vector_index_if_due(space)
    return space


def vector_index_name(space: EmbeddingSpace) -> str:
    return f"{space.partition_name}_hnsw"


def vector_index_exists(space: EmbeddingSpace) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("select to_regclass(%s) is not null", [vector_index_name(space)])
        return cursor.fetchone()[0]


def vector_index_create(space: EmbeddingSpace) -> None:
    """Build the partition's HNSW index if it has none (one builder at a time: ``if not exists`` alone
    is not safe against a concurrent build)."""
    kind = vector_type(space.dims)
    ops = "vector_cosine_ops" if kind.startswith("vector") else "halfvec_cosine_ops"
    name = vector_index_name(space)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
        cursor.execute(
            f"create index if not exists {name} on {space.partition_name} using hnsw ((embedding::{kind}) {ops}) "
            "with (m = 16, ef_construction = 64)"
        )


def vector_index_if_due(space: EmbeddingSpace) -> bool:
    """Build the HNSW index once the partition holds VECTOR_INDEX_MIN_CHUNKS chunks; whether it has one."""
    if vector_index_exists(space):
        return True
    least = settings.VECTOR_INDEX_MIN_CHUNKS
    with connection.cursor() as cursor:  # counts at most ``least`` rows
        cursor.execute(f"select count(*) from (select 1 from {space.partition_name} limit %s) rows", [least])
        if cursor.fetchone()[0] < least:
            return False
    vector_index_create(space)
    return True


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
