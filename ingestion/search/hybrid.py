"""Reads over sources, documents and chunks. Retrieval is a selector over chunks.

Hybrid retrieval runs a lexical leg (BM25 through pg_textsearch, or built-in full-text search
where pg_textsearch is missing) and a dense leg (HNSW on the space's partition), then fuses
the two rankings and caps chunks per page so one long page cannot crowd out the answer.

Two fusions, chosen by ``settings.RETRIEVAL_FUSION`` (default ``weighted`` at alpha 0.5: nDCG@10
0.730 against RRF's 0.717 on SciFact train with MiniLM):

* ``rrf``: reciprocal-rank fusion, each leg adds 1 / (60 + rank) to the chunks it holds;
* ``weighted``: each leg's scores (BM25, and cosine similarity) min-max normalised over that leg's
  candidates to [0, 1], then ``alpha * dense + (1 - alpha) * lexical`` with
  ``alpha = settings.RETRIEVAL_FUSION_ALPHA``; a chunk missing from a leg scores 0 there.

Pages are then ranked as wholes (:func:`page_aggregate`, ``RETRIEVAL_PAGE_DECAY``, 0.5): a page's
best chunk carries the page's score, the best fused score of each of its distinct sections (heading
paths) summed with a geometric decay (at 0.5 the best counts fully, the next half, the next a
quarter...), so a page that several of its sections match ranks above one that matched once by a
shade more; the other chunks keep their own scores. A section cut into several chunks counts once:
its chunks are one text, not separate evidence, and a document of one section (a SciFact abstract)
ranks exactly as by its best chunk. Counting every chunk lowered SciFact train nDCG@10 from 0.730 to
0.7226; counting sections put three more Django FAQ linked pages in the answers (docs/benchmarks.md).

Where the lexical leg is the full-text fallback, fusion is ``weighted`` at ``RETRIEVAL_FTS_FUSION_ALPHA``
(0.7) whatever ``RETRIEVAL_FUSION`` says: on SciFact train the fallback fused at equal weight (0.644) or
by RRF (0.634) ranked below dense alone (0.682), at 0.7 above it (0.691).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from ingestion.crawling.youtube import moment_link
from ingestion.models import EmbeddingSpace, cited_url
from ingestion.spaces import lexical_backend, vector_literal, vector_type

RRF_K = 60
CANDIDATES = 50  # rows each leg hands to fusion
MAX_CANDIDATES = 400  # when one page crowds out the rest
HNSW_EF_SEARCH = 100
MAX_CHUNKS_PER_DOCUMENT = 2
FUSIONS = ("rrf", "weighted")

Scored = list[tuple[int, float]]  # one leg's candidates, best first: (chunk id, score, higher is better)
Fused = list[tuple[int, float, dict[str, int]]]  # (chunk id, fused score, rank in each leg)


@dataclass(frozen=True)
class Fusion:
    """How the legs' rankings become one: ``rrf``, or ``weighted`` with ``alpha`` the dense leg's share."""

    method: str = "rrf"
    alpha: float = 0.5

    def __post_init__(self):
        if self.method not in FUSIONS:
            raise ValueError(f"unknown fusion {self.method!r}: one of {', '.join(FUSIONS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"fusion alpha {self.alpha} is not between 0 and 1")

    @property
    def label(self) -> str:
        return "rrf" if self.method == "rrf" else f"weighted@{self.alpha:.2f}"


def default_fusion() -> Fusion:
    """The fusion the settings choose (``RETRIEVAL_FUSION``, ``RETRIEVAL_FUSION_ALPHA``), or where the lexical
    leg is the full-text fallback, the fallback's own (``fallback_fusion``)."""
    if lexical_backend() == "fts":
        return fallback_fusion()
    return Fusion(settings.RETRIEVAL_FUSION, float(settings.RETRIEVAL_FUSION_ALPHA))


def fallback_fusion() -> Fusion:
    """Weighted fusion leaning on the vectors (``RETRIEVAL_FTS_FUSION_ALPHA``): PostgreSQL's built-in
    full-text search ranks too poorly for an equal share (docs/benchmarks.md, "The full-text fallback")."""
    return Fusion("weighted", float(settings.RETRIEVAL_FTS_FUSION_ALPHA))


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
    # Each leg's own score of the chunk: "lexical" (BM25, or ts_rank without pg_textsearch) and "dense"
    # (cosine similarity); a leg that did not return the chunk is missing.
    leg_scores: dict[str, float] = field(default_factory=dict)
    # Where a citation opens the document when that is not its address: the readable page of an Office
    # file added by address (``ingestion.models.cited_url``); "" for the address itself.
    view_url: str = ""

    @property
    def link(self) -> str:
        """The page and section to open: ``page#section``, ``file.pdf#page=3``, a YouTube video at
        the moment quoted (``watch?v=ID&t=90s``), an Office file's readable page at its slide."""
        url = self.view_url or self.url
        if not self.anchor:
            return url
        return moment_link(url, self.anchor) or f"{url}#{self.anchor}"


def _lexical_ranking(space: EmbeddingSpace, query: str, limit: int) -> Scored:
    """BM25 over the space's own partition: its own index, so its own term statistics."""
    if not query.strip():
        return []
    table = space.partition_name  # the partition itself, never the parent: its own BM25 index and term statistics
    with connection.cursor() as cursor:
        if lexical_backend() == "bm25":
            # The score is the one the index scan ranked by (bm25_get_current_score(), the extension's own
            # stand-in for an ORDER BY it ranked): `<@>` in the select list scores every returned row again
            # from its text (~65 us a row: 3-4 ms for 50 rows of a 700-chunk site against 0.2 ms), and that
            # standalone score can disagree with the order by a few hundredths. The stand-in holds only under
            # an index scan (under a sort every row would get the last score): inside a caller's transaction,
            # which may have turned index scans off (the exact dense scan does), they are turned on again.
            if connection.in_atomic_block:
                cursor.execute("set local enable_indexscan = on")
            # Without an index name, pg_textsearch binds the query to this table's BM25 index. The text
            # goes through to_bm25query(), never a ::bm25query cast, which reads "word:" as an index
            # name ("Note: refunds?" failed with 'index "Note" does not exist'). <@> is the BM25 score
            # negated (lower is better).
            cursor.execute(
                f"select id, -score from (select id, bm25_get_current_score() as score from {table}"
                " order by search_text <@> to_bm25query(%s) limit %s) ranked where score < 0",
                [query, limit],
            )
        else:
            cursor.execute(
                "with q as (select nullif(replace(plainto_tsquery('english', %s)::text, '&', '|'), '')::tsquery as q)"
                f" select id, ts_rank_cd(to_tsvector('english'::regconfig, search_text), q.q) as score"
                f" from {table}, q where q.q is not null"
                " and to_tsvector('english'::regconfig, search_text) @@ q.q"
                " order by score desc limit %s",
                [query, limit],
            )
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def _dense_ranking(space: EmbeddingSpace, vector, limit: int, exact: bool = False) -> Scored:
    """HNSW over the space's own partition; the score is the cosine similarity (1 - distance).

    ``ef_search`` is at least ``limit``, and iterative scanning goes on past ``ef_search`` if the
    graph gives fewer rows than asked (pgvector 0.8), so a search returns ``limit`` rows whenever the
    partition holds them. ``exact`` reads every row of the partition instead of the graph (index
    scans off): the reference that measures the graph's recall.
    """
    kind = vector_type(space.dims)
    with transaction.atomic(), connection.cursor() as cursor:
        if exact:
            cursor.execute("set local enable_indexscan = off")
        else:
            # Both settings in one statement (a round trip each, otherwise): `set local` for the transaction.
            cursor.execute(
                "select set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                [str(max(HNSW_EF_SEARCH, limit))],
            )
        # relaxed_order may return rows slightly out of order: sort what the index gave.
        cursor.execute(
            f"select id, 1 - distance from (select id, embedding::{kind} <=> %s::{kind} as distance"
            f" from {space.partition_name} order by distance limit %s) found order by distance",
            [vector_literal(vector), limit],
        )
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


# The legs on their own, for readers beside the fused search (the gate's calibration).
lexical_ranking = _lexical_ranking
dense_ranking = _dense_ranking


def rrf_fuse(rankings: dict[str, list[int]], k: int = RRF_K) -> Fused:
    """Reciprocal-rank fusion: each list adds 1 / (k + rank) to the ids it holds."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for leg, ids in rankings.items():
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(chunk_id, {})[leg] = rank
    ordered = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
    return [(chunk_id, scores[chunk_id], ranks[chunk_id]) for chunk_id in ordered]


def weighted_fuse(rankings: dict[str, Scored], alpha: float) -> Fused:
    """Convex combination of min-max normalised scores: ``alpha`` for the dense leg, the rest lexical.

    Each leg's scores are scaled to [0, 1] over its own candidates (all 1 when they are equal); a
    chunk a leg did not return gets 0 from it. Ties keep the order in which the chunks were first seen.
    """
    weights = {"dense": alpha, "lexical": 1.0 - alpha}
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for leg, scored in rankings.items():
        if not scored:
            continue
        values = [score for _, score in scored]
        low, spread = min(values), max(values) - min(values)
        for rank, (chunk_id, score) in enumerate(scored, start=1):
            normalised = (score - low) / spread if spread > 0 else 1.0
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weights.get(leg, 1.0) * normalised
            ranks.setdefault(chunk_id, {})[leg] = rank
    ordered = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
    return [(chunk_id, scores[chunk_id], ranks[chunk_id]) for chunk_id in ordered]


def fuse(rankings: dict[str, Scored], fusion: Fusion) -> Fused:
    if fusion.method == "weighted":
        return weighted_fuse(rankings, fusion.alpha)
    return rrf_fuse({leg: [chunk_id for chunk_id, _ in scored] for leg, scored in rankings.items()})


def _load_rows(space: EmbeddingSpace, chunk_ids: set[int]) -> dict[int, tuple]:
    if not chunk_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "select c.id, c.document_id, c.text, c.heading_path, c.anchor, d.url, d.title, d.file_name, d.public_token"
            " from ingestion_chunk c join ingestion_document d on d.id = c.document_id"
            f" where c.space_id = {int(space.pk)} and c.id = any(%s)",
            [sorted(chunk_ids)],
        )
        return {row[0]: row for row in cursor.fetchall()}


def heading_path_value(value) -> list[str]:
    """A chunk's ``heading_path`` as read through a raw cursor: Django has psycopg hand jsonb over as
    its text (its JSONField decodes it itself), so a raw query gets a string, not a list."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(part) for part in value] if isinstance(value, list) else []


def _hits(rows: dict[int, tuple], fused: Fused) -> list[Hit]:
    hits = []
    for chunk_id, score, ranks in fused:
        row = rows.get(chunk_id)
        if row:
            heading_path = heading_path_value(row[3])
            view = cited_url(document_id=row[1], url=row[5], file_name=row[7], public_token=row[8])
            hits.append(Hit(row[0], row[1], row[2], heading_path, row[4], row[5], row[6], score, ranks, view_url=view))
    return hits


def chunk_vectors(*, space: EmbeddingSpace, chunk_ids: list[int]) -> dict:
    """The stored embeddings (numpy arrays) of some of the space's chunks, by chunk id: the vectors
    retrieval compared the query with, so checks need not embed the chunks' texts again."""
    import numpy as np

    if not chunk_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(f"select id, embedding::text from {space.partition_name} where id = any(%s)", [list(chunk_ids)])
        return {row[0]: np.array(row[1].strip("[]").split(","), dtype=np.float32) for row in cursor.fetchall()}


def page_decay_default() -> float:
    """The weight of a page's n-th best chunk is this to the power n - 1 (``RETRIEVAL_PAGE_DECAY``;
    0 ranks a page by its best chunk alone)."""
    return float(settings.RETRIEVAL_PAGE_DECAY)


def page_aggregate(hits: list[Hit], decay: float | None = None) -> list[Hit]:
    """``hits`` (best first) with each page's best chunk scored as the whole page: the sum of the
    best chunk score of each of the page's distinct sections (heading paths), the n-th best weighted
    ``decay ** (n - 1)``; then best first again (a
    stable sort: ties keep their order). The other chunks keep their own scores, so a page's second
    chunk still competes with the other pages' best on its own merit. ``decay`` 0 changes nothing;
    None is the settings' (:func:`page_decay_default`)."""
    decay = page_decay_default() if decay is None else decay
    if decay <= 0 or not hits:
        return hits
    totals: dict[int, float] = {}
    seen: dict[int, int] = {}
    sections: set[tuple[int, tuple[str, ...]]] = set()
    for hit in hits:
        # Only a page's distinct sections are separate evidence: a section cut into several chunks
        # (one long abstract) counts once, at its best chunk, so a page of one section ranks as before.
        section = (hit.document_id, tuple(hit.heading_path))
        if section in sections:
            continue
        sections.add(section)
        n = seen.get(hit.document_id, 0)
        totals[hit.document_id] = totals.get(hit.document_id, 0.0) + hit.score * decay**n
        seen[hit.document_id] = n + 1
    leaders: set[int] = set()
    for hit in hits:
        if hit.document_id not in leaders:
            leaders.add(hit.document_id)
            hit.score = totals[hit.document_id]
    return sorted(hits, key=lambda hit: -hit.score)


def cap_per_document(hits: list[Hit], cap: int = MAX_CHUNKS_PER_DOCUMENT) -> list[Hit]:
    counts: dict[int, int] = {}
    kept = []
    for hit in hits:
        counts[hit.document_id] = counts.get(hit.document_id, 0) + 1
        if counts[hit.document_id] <= cap:
            kept.append(hit)
    return kept


def chunk_search(
    *,
    space: EmbeddingSpace,
    query: str,
    vector,
    k: int,
    mode: str = "hybrid",
    per_document: int | None = MAX_CHUNKS_PER_DOCUMENT,
    fusion: Fusion | None = None,
    exact: bool = False,
    page_decay: float | None = None,
) -> list[Hit]:
    """The ``k`` best chunks of ``space`` for ``query`` (mode: hybrid, lexical or dense), fused by
    ``fusion`` (the settings' when None), pages ranked as wholes (:func:`page_aggregate`,
    ``page_decay`` 0 for the best chunk alone, None for the settings'); ``exact`` scans the partition instead of its vector index."""
    fusion = fusion or default_fusion()
    return chunk_search_fusions(
        space=space,
        query=query,
        vector=vector,
        k=k,
        mode=mode,
        per_document=per_document,
        fusions={"": fusion},
        exact=exact,
        page_decay=page_decay,
    )[""]


def chunk_search_fusions(
    *,
    space: EmbeddingSpace,
    query: str,
    vector,
    k: int,
    fusions: dict[str, Fusion],
    mode: str = "hybrid",
    per_document: int | None = MAX_CHUNKS_PER_DOCUMENT,
    exact: bool = False,
    page_decay: float | None = None,
) -> dict[str, list[Hit]]:
    """``chunk_search`` once per named fusion, all from the same candidate lists (each leg is read
    once per candidate depth), so fusions can be compared on identical candidates."""
    read: dict[int, tuple[dict[str, Scored], dict[int, tuple]]] = {}

    def legs(candidates: int) -> tuple[dict[str, Scored], dict[int, tuple]]:
        if candidates not in read:
            rankings: dict[str, Scored] = {}
            if mode in {"hybrid", "lexical"}:
                rankings["lexical"] = _lexical_ranking(space, query, candidates)
            if mode in {"hybrid", "dense"}:
                rankings["dense"] = _dense_ranking(space, vector, candidates, exact)
            ids = {chunk_id for scored in rankings.values() for chunk_id, _ in scored}
            read[candidates] = (rankings, _load_rows(space, ids))
        return read[candidates]

    results = {}
    for name, fusion in fusions.items():
        candidates = max(CANDIDATES, k)
        while True:
            rankings, rows = legs(candidates)
            hits = _hits(rows, fuse(rankings, fusion))
            by_leg = {leg: dict(scored) for leg, scored in rankings.items()}
            for hit in hits:
                hit.leg_scores = {leg: scores[hit.chunk_id] for leg, scores in by_leg.items() if hit.chunk_id in scores}
            hits = page_aggregate(hits, page_decay)
            if per_document:
                hits = cap_per_document(hits, per_document)
            # One long page can fill every candidate slot; then look deeper, once.
            exhausted = all(len(scored) < candidates for scored in rankings.values())
            if len(hits) >= k or exhausted or candidates >= MAX_CANDIDATES:
                results[name] = hits[:k]
                break
            candidates = MAX_CANDIDATES
    return results
