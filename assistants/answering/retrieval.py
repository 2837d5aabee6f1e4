"""The passages an answer is written from: hybrid search in the assistant's active space, more
candidates reranked when the assistant has a reranker, a hit from the visitor's current page moved
up, and whether the hits are good enough to answer from (``grounding.retrieval_evidence``, held to
the space's own calibrated gate). A question in another language than the content can come with its
translation (a model's): both are searched and their hits merged, best fused score first."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from assistants.answering.grounding import Evidence, SourceVectors, cosine, gate_of, retrieval_evidence
from assistants.models import Assistant
from chatsite.db import release_connection
from chatsite.lib.urls import page_key
from ingestion.search.hybrid import MAX_CHUNKS_PER_DOCUMENT, Hit, cap_per_document, chunk_search
from ingestion.spaces import space_active

logger = logging.getLogger(__name__)


@dataclass
class Retrieval:
    """What one search found, and how much it can be trusted."""

    hits: list[Hit]
    evidence: Evidence
    sources: SourceVectors | None  # the hits' embeddings, shared with the grounding check
    vector: object = None  # the query's embedding (None without a space)
    calibration: dict | None = None  # the gate the evidence was held to (see grounding.gate_of)


def boost_page(hits: list[Hit], page_url: str, positions: int) -> list[Hit]:
    """``hits`` with those from the page the visitor is on moved up ``positions`` places.

    A visitor asking from a page most likely asks about it; a small move (not to the top) keeps a
    clearly better passage from elsewhere ahead. Pure reordering: nothing is added or dropped."""
    if not page_url or positions <= 0:
        return hits
    page = page_key(page_url)
    if not page[0]:
        return hits
    order = sorted(range(len(hits)), key=lambda i: i - positions - 0.5 if page_key(hits[i].url) == page else i)
    return [hits[i] for i in order]


def _reranked(assistant: Assistant, query: str, hits: list[Hit]) -> list[Hit]:
    """``hits`` in the order of the assistant's reranker; the fused order when it cannot load or
    fails (a misconfigured reranker must not cost the visitor the answer)."""
    from ingestion.search.rerank import get_reranker, rerank

    try:
        return rerank(hits, query, get_reranker(assistant.reranker_model))
    except Exception:
        logger.exception("reranker %r failed; keeping the hybrid order", assistant.reranker_model)
        return hits


def widen_to_pages(top: list[Hit], rest: list[Hit], pages: int) -> list[Hit]:
    """``top``, then from ``rest`` (the same ranking read further, best first) the best chunk of each
    page not yet among the hits, until they span ``pages`` pages: an answer can cite up to that many
    distinct pages in evidence order, while ``top`` (the passages the gate is held to) is unchanged."""
    hits = list(top)
    seen = {hit.document_id for hit in hits}
    for hit in rest:
        if len(seen) >= pages:
            break
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            hits.append(hit)
    return hits


def _search(
    assistant: Assistant, query: str, k: int, page_url: str, space=None, pages: int = 0
) -> tuple[list[Hit], SourceVectors | None, object]:
    """The hits, a lazy holder of their embeddings, and the query's vector (None without a space).
    ``pages``: after the ``k`` best, the best chunk of further pages until the hits span this many
    (:func:`widen_to_pages`; 0: the ``k`` best alone)."""
    from ingestion.embedding import get_embedder

    space = space or space_active(assistant.pk)
    if space is None:
        return [], None, None
    embedder = get_embedder(space.model_name)
    boost = settings.PAGE_BOOST_POSITIONS if page_url else 0
    candidates = max(settings.RERANK_CANDIDATES, k) if assistant.reranker_model else k + boost
    if pages:
        # At most MAX_CHUNKS_PER_DOCUMENT chunks a page: this many more reach ``pages`` pages whenever
        # the legs' candidates hold them (the same rows are read: no extra search).
        candidates = max(candidates, k + boost + pages * MAX_CHUNKS_PER_DOCUMENT)
    # No database connection is held while the question waits its turn at the process's model (one
    # forward pass at a time): held, a burst of questions queued there emptied the pool (503s).
    release_connection()
    vector = embedder.embed_queries([query])[0]
    hits = chunk_search(space=space, query=query, vector=vector, k=candidates)
    if assistant.reranker_model:
        hits = _reranked(assistant, query, hits)
    hits = boost_page(hits, page_url, boost)
    hits = widen_to_pages(hits[:k], hits[k:], pages) if pages else hits[:k]
    return hits, SourceVectors(embedder, hits, space), vector


def retrieve(assistant: Assistant, query: str, k: int | None = None, *, page_url: str = "") -> list[Hit]:
    """The ``k`` best chunks for ``query``: hybrid search; with the assistant's reranker,
    ``RERANK_CANDIDATES`` candidates reranked; hits from ``page_url`` moved up (:func:`boost_page`)."""
    return _search(assistant, query, k or settings.RETRIEVAL_TOP_K, page_url)[0]


def merge_hits(first: list[Hit], second: list[Hit], k: int) -> list[Hit]:
    """Two searches' hits as one list: best fused score first, each chunk once, at most
    ``MAX_CHUNKS_PER_DOCUMENT`` per page."""
    seen: dict[int, Hit] = {}
    for hit in sorted([*first, *second], key=lambda hit: -hit.score):
        seen.setdefault(hit.chunk_id, hit)
    return cap_per_document(list(seen.values()))[:k]


_ACTIVE = object()  # retrieve_with_evidence's default: read the assistant's active space


def retrieve_with_evidence(
    assistant: Assistant,
    query: str,
    *,
    page_url: str = "",
    language: str = "",
    translated: str = "",
    space=_ACTIVE,
) -> Retrieval:
    """:func:`retrieve`, and whether its hits are good enough to answer from. ``language``: the
    question's (a question in another language than the content is held to a lower bar);
    ``translated``: the query in the content's language, searched too; ``space``: the assistant's
    active space when the caller has just read it (None: it has none), else it is read here."""
    if space is _ACTIVE:
        space = space_active(assistant.pk)
    if space is None:
        return Retrieval([], Evidence(query, 0.0, 0.0, weak=True, language=language), None)
    k, pages = settings.RETRIEVAL_TOP_K, settings.ANSWER_MAX_PAGES
    hits, sources, vector = _search(assistant, query, k, page_url, space, pages)
    calibration = gate_of(space.calibration, space.model_name)
    other_similarity = None
    if translated and translated.strip().casefold() != query.strip().casefold():
        other, other_sources, other_vector = _search(assistant, translated, k, page_url, space, pages)
        if other:
            other_similarity = max(cosine(other_vector, v) for v in other_sources.get()[:k])
            merged = merge_hits(hits[:k], other[:k], k)
            rest = sorted([*hits[k:], *other[k:]], key=lambda hit: -hit.score)
            hits = widen_to_pages(merged, rest, pages)
            sources = SourceVectors(sources.embedder, hits, space)
    if not hits:
        evidence = Evidence(query, 0.0, 0.0, weak=True, language=language, content_language=calibration["language"])
        return Retrieval(hits, evidence, None, vector, calibration)
    evidence = retrieval_evidence(
        query,
        sources,
        query_vector=vector,
        calibration=calibration,
        model_name=space.model_name,
        language=language,
        similarity=other_similarity,
        depth=k,
    )
    evidence.translated = translated if other_similarity is not None else ""
    return Retrieval(hits, evidence, sources, vector, calibration)
