"""The passages an answer is written from: hybrid search in the assistant's active space, more
candidates reranked when the assistant has a reranker, a hit from the visitor's current page moved
up, and whether the hits are good enough to answer from (``grounding.retrieval_evidence``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from assistants.answering.grounding import Evidence, SourceVectors, retrieval_evidence
from assistants.models import Assistant
from chatsite.lib.urls import page_key
from ingestion.search.hybrid import Hit, chunk_search
from ingestion.spaces import space_active

logger = logging.getLogger(__name__)


@dataclass
class Retrieval:
    """What one search found, and how much it can be trusted."""

    hits: list[Hit]
    evidence: Evidence
    sources: SourceVectors | None  # the hits' embeddings, shared with the grounding check


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


def _search(assistant: Assistant, query: str, k: int, page_url: str) -> tuple[list[Hit], SourceVectors | None, object]:
    """The hits, a lazy holder of their embeddings, and the query's vector (None without a space)."""
    from ingestion.embedding import get_embedder

    space = space_active(assistant.pk)
    if space is None:
        return [], None, None
    embedder = get_embedder(space.model_name)
    boost = settings.PAGE_BOOST_POSITIONS if page_url else 0
    candidates = max(settings.RERANK_CANDIDATES, k) if assistant.reranker_model else k + boost
    vector = embedder.embed_queries([query])[0]
    hits = chunk_search(space=space, query=query, vector=vector, k=candidates)
    if assistant.reranker_model:
        hits = _reranked(assistant, query, hits)
    hits = boost_page(hits, page_url, boost)[:k]
    return hits, SourceVectors(embedder, hits, space), vector


def retrieve(assistant: Assistant, query: str, k: int | None = None, *, page_url: str = "") -> list[Hit]:
    """The ``k`` best chunks for ``query``: hybrid search; with the assistant's reranker,
    ``RERANK_CANDIDATES`` candidates reranked; hits from ``page_url`` moved up (:func:`boost_page`)."""
    return _search(assistant, query, k or settings.RETRIEVAL_TOP_K, page_url)[0]


def retrieve_with_evidence(assistant: Assistant, query: str, *, page_url: str = "") -> Retrieval:
    """:func:`retrieve`, and whether its hits are good enough to answer from."""
    hits, sources, vector = _search(assistant, query, settings.RETRIEVAL_TOP_K, page_url)
    if not hits:
        return Retrieval(hits, Evidence(query, 0.0, 0.0, weak=True), None)
    return Retrieval(hits, retrieval_evidence(query, sources, query_vector=vector), sources)
