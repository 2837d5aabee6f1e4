"""The golden set: an assistant's retrieval measured on questions whose answering pages are known.

Each golden question names the pages that answer it (entered by the team, or collected from
thumbs-down answers and handoffs and completed by the team). An evaluation runs every question
through the assistant's own space the way the chat does, with each leg alone and fused, and with
the assistant's reranker when it has one, and reads the hits as a ranking of pages:

* nDCG@10, Recall@10 and MRR@10 (``ndcg_10``, ``recall_10``, ``mrr_10``) of the expected pages (the BEIR metrics of
  ``ingestion.search.metrics``, each expected page relevant with grade 1);
* "in the answer": the share of questions whose answer *cites* an expected page: what the visitor
  sees. Each mode's ``RETRIEVAL_TOP_K`` chunks go through the assistant's gate (a refusal cites
  nothing) and the offline answerer, whose citations are counted (a model's answer would cost a
  call per question; the offline one is what a team without a model key shows). The chunks a
  model is given are more than it shows: counting them overstated what a visitor gets.

Per question it keeps the rank of the first expected page in each mode and the pages the
assistant would answer from, so the team sees which questions fail and what was found instead.
"""

from __future__ import annotations

import time

from django.conf import settings

from assistants.answering.extractive import extractive_answer
from assistants.answering.grounding import SourceVectors, cosine, gate_of, retrieval_evidence
from assistants.answering.pipeline import cited_hits
from assistants.answering.retrieval import retrieve
from assistants.models import Assistant, GoldenQuestion
from chatsite.lib.urls import page_key
from ingestion.search.hybrid import Hit, chunk_search
from ingestion.search.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from ingestion.spaces import space_active

DEPTH = 20  # chunks read per question and mode (pages are ranked from these)
SHOWN = 3  # pages kept per question to show what the assistant found


class GoldenError(Exception):
    """Why an evaluation cannot run, in one sentence for the team."""


def _key_text(url: str) -> str:
    """A page's identity (host without www, path without trailing slash), as one string."""
    host, path = page_key(url)
    return f"{host}{path}"


def _pages(hits: list[Hit]) -> dict[str, Hit]:
    """The hits' pages, best first, each with its best hit."""
    pages: dict[str, Hit] = {}
    for hit in hits:
        pages.setdefault(_key_text(hit.url), hit)
    return pages


def cited_pages(question: str, hits: list[Hit], *, vector, embedder, space, gate: dict) -> set[str]:
    """The pages the offline answer to ``question`` from ``hits`` cites (none when the gate refuses)."""
    if not hits:
        return set()
    sources = SourceVectors(embedder, hits, space)
    evidence = retrieval_evidence(question, sources, query_vector=vector, calibration=gate, model_name=space.model_name)
    if evidence.weak:
        return set()
    floor = float(gate.get("cross_language_min_similarity", 0.0))
    relevant = {n for n, v in enumerate(sources.get(), start=1) if cosine(vector, v) >= floor}
    text = extractive_answer(
        question,
        hits,
        query_vector=vector,
        embedder=embedder,
        unsure=evidence.similarity < float(gate.get("min_similarity", 0.0)),
        relevant=relevant,
    )
    return {_key_text(citation["url"]) for citation in cited_hits(text, hits)}


def evaluate_golden_set(assistant: Assistant) -> dict:
    """The report stored on a GoldenRun (see the module's docstring)."""
    space = space_active(assistant.pk)
    if space is None:
        raise GoldenError("The assistant has no indexed content yet.")
    questions = list(GoldenQuestion.objects.filter(assistant=assistant))
    if not questions:
        raise GoldenError("The golden set is empty: add questions with the pages that answer them first.")
    from ingestion.embedding import get_embedder

    begin = time.perf_counter()
    embedder = get_embedder(space.model_name)
    gate = gate_of(space.calibration, space.model_name)
    vectors = embedder.embed_queries([golden.question for golden in questions])
    modes = {"lexical": "Lexical (BM25) only", "dense": "Dense (vectors) only", "hybrid": "Hybrid (fused)"}
    if assistant.reranker_model:
        modes["reranked"] = f"Hybrid + reranker ({assistant.reranker_model})"
    totals = {mode: {"ndcg_10": 0.0, "recall_10": 0.0, "mrr_10": 0.0, "in_answer": 0.0} for mode in modes}
    rows = []
    for golden, vector in zip(questions, vectors):
        qrels = {_key_text(url): 1 for url in golden.expected_urls}
        ranks = []
        for mode in modes:  # the last one is how the chat retrieves: its pages are shown
            if mode == "reranked":
                hits = retrieve(assistant, golden.question, DEPTH)  # exactly what the chat answers from
            else:
                hits = chunk_search(space=space, query=golden.question, vector=vector, k=DEPTH, mode=mode)
            pages = _pages(hits)
            ranking = list(pages)
            in_answer = cited_pages(
                golden.question,
                hits[: settings.RETRIEVAL_TOP_K],
                vector=vector,
                embedder=embedder,
                space=space,
                gate=gate,
            )
            scores = totals[mode]
            scores["ndcg_10"] += ndcg_at_k(ranking, qrels, 10)
            scores["recall_10"] += recall_at_k(ranking, qrels, 10)
            scores["mrr_10"] += mrr_at_k(ranking, qrels, 10)
            scores["in_answer"] += float(bool(in_answer & qrels.keys()))
            ranks.append(
                {
                    "mode": mode,
                    "rank": next((n for n, key in enumerate(ranking, start=1) if key in qrels), None),
                    "cited": bool(in_answer & qrels.keys()),
                }
            )
            found = [{"title": hit.title, "url": hit.url} for hit in list(pages.values())[:SHOWN]]
        rows.append(
            {
                "id": golden.pk,
                "question": golden.question,
                "expected": golden.expected_urls,
                "ranks": ranks,
                "found": found,
            }
        )
    count = len(questions)
    return {
        "questions": rows,
        "modes": [
            {"mode": mode, "label": label, **{name: round(total / count, 4) for name, total in totals[mode].items()}}
            for mode, label in modes.items()
        ],
        "count": count,
        "model": space.model_name,
        "reranker": assistant.reranker_model,
        "top_k": settings.RETRIEVAL_TOP_K,
        "seconds": round(time.perf_counter() - begin, 2),
    }
