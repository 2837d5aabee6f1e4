"""Reads over sources, documents and chunks. Retrieval is a selector over chunks.

Hybrid retrieval runs a lexical leg (BM25 through pg_textsearch, or built-in full-text search
where pg_textsearch is missing) and a dense leg (HNSW on the space's partition), then fuses
the two rankings with reciprocal-rank fusion and caps chunks per page so one long page cannot
crowd out the answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from ingestion.models import Document, EmbeddingSpace, Source
from ingestion.spaces import lexical_backend, vector_literal, vector_type

RRF_K = 60
CANDIDATES = 50  # rows each leg hands to fusion
MAX_CANDIDATES = 400  # when one page crowds out the rest
HNSW_EF_SEARCH = 100
MAX_CHUNKS_PER_DOCUMENT = 2


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    text: str
    heading_path: list[str]
    anchor: str
    url: str
    title: str
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)

    @property
    def link(self) -> str:
        """The page and section to open: ``page#section``, ``file.pdf#page=3``."""
        return f"{self.url}#{self.anchor}" if self.anchor else self.url


def _lexical_ids(space: EmbeddingSpace, query: str, limit: int) -> list[int]:
    """BM25 over the space's own partition: its own index, so its own term statistics."""
    if not query.strip():
        return []
    table = space.partition_name  # the partition itself, never the parent: see MEASURED.md
    with connection.cursor() as cursor:
        if lexical_backend() == "bm25":
            # Without an index name, pg_textsearch binds the query to this table's BM25 index.
            cursor.execute(
                f"select id from (select id, search_text <@> %s::bm25query as score from {table}"
                " order by score limit %s) ranked where score < 0",
                [query, limit],
            )
        else:
            cursor.execute(
                "with q as (select nullif(replace(plainto_tsquery('english', %s)::text, '&', '|'), '')::tsquery as q)"
                f" select id from {table}, q where q.q is not null"
                " and to_tsvector('english'::regconfig, search_text) @@ q.q"
                " order by ts_rank_cd(to_tsvector('english'::regconfig, search_text), q.q) desc limit %s",
                [query, limit],
            )
        return [row[0] for row in cursor.fetchall()]


def _dense_ids(space: EmbeddingSpace, vector, limit: int) -> list[int]:
    kind = vector_type(space.dims)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"set local hnsw.ef_search = {max(HNSW_EF_SEARCH, limit)}")
        cursor.execute("set local hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            f"select id from {space.partition_name} order by embedding::{kind} <=> %s::{kind} limit %s",
            [vector_literal(vector), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def rrf_fuse(rankings: dict[str, list[int]], k: int = RRF_K) -> list[tuple[int, float, dict[str, int]]]:
    """Reciprocal-rank fusion: each list adds 1 / (k + rank) to the ids it holds."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for leg, ids in rankings.items():
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(chunk_id, {})[leg] = rank
    ordered = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
    return [(chunk_id, scores[chunk_id], ranks[chunk_id]) for chunk_id in ordered]


def _load_hits(space: EmbeddingSpace, fused: list[tuple[int, float, dict[str, int]]]) -> list[Hit]:
    if not fused:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "select c.id, c.document_id, c.text, c.heading_path, c.anchor, d.url, d.title"
            " from ingestion_chunk c join ingestion_document d on d.id = c.document_id"
            f" where c.space_id = {int(space.pk)} and c.id = any(%s)",
            [[chunk_id for chunk_id, _, _ in fused]],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    hits = []
    for chunk_id, score, ranks in fused:
        row = rows.get(chunk_id)
        if row:
            heading_path = row[3] if isinstance(row[3], list) else []
            hits.append(Hit(row[0], row[1], row[2], heading_path, row[4], row[5], row[6], score, ranks))
    return hits


def cap_per_document(hits: list[Hit], cap: int = MAX_CHUNKS_PER_DOCUMENT) -> list[Hit]:
    counts: dict[int, int] = {}
    kept = []
    for hit in hits:
        counts[hit.document_id] = counts.get(hit.document_id, 0) + 1
        if counts[hit.document_id] <= cap:
            kept.append(hit)
    return kept


def chunk_search(
    *, space: EmbeddingSpace, query: str, vector, k: int, mode: str = "hybrid", per_document: int | None = MAX_CHUNKS_PER_DOCUMENT
) -> list[Hit]:
    """The ``k`` best chunks of ``space`` for ``query`` (mode: hybrid, lexical or dense)."""
    candidates = max(CANDIDATES, k)
    while True:
        rankings: dict[str, list[int]] = {}
        if mode in {"hybrid", "lexical"}:
            rankings["lexical"] = _lexical_ids(space, query, candidates)
        if mode in {"hybrid", "dense"}:
            rankings["dense"] = _dense_ids(space, vector, candidates)
        hits = _load_hits(space, rrf_fuse(rankings))
        if per_document:
            hits = cap_per_document(hits, per_document)
        # One long page can fill every candidate slot; then look deeper, once.
        exhausted = all(len(ids) < candidates for ids in rankings.values())
        if len(hits) >= k or exhausted or candidates >= MAX_CANDIDATES:
            return hits[:k]
        candidates = MAX_CANDIDATES


def source_progress(*, source: Source) -> dict:
    """What the source page shows while a crawl runs, and after."""
    run = source.last_run
    documents = Document.objects.filter(source=source).aggregate(
        total=Count("id"),
        ready=Count("id", filter=Q(status=Document.Status.READY)),
        pending=Count("id", filter=Q(status=Document.Status.PENDING)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
        chunks=Sum("chunk_count", filter=Q(status=Document.Status.READY)),
    )
    return {
        "status": source.status,
        "status_label": source.get_status_display(),
        "error": source.error,
        "run": None
        if run is None
        else {
            "id": run.pk,
            "status": run.status,
            "pages_found": run.pages_found,
            "pages_fetched": run.pages_fetched,
            "pages_failed": run.pages_failed,
            "pages_skipped": run.pages_skipped,
            "pages_unchanged": run.pages_unchanged,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "documents": {key: value or 0 for key, value in documents.items()},
    }
