"""Retrieval quality on BEIR-format test collections: loading one, and the metrics BEIR reports.

The metrics follow trec_eval as pytrec_eval (and so BEIR) computes them, per query over a ranked
list of document ids and that query's graded judgements (``qrels``: document id → grade; a grade
of 0 or less is "not relevant"):

* nDCG@k: DCG = Σ_{i ≤ k} grade_i / log2(i + 1) (linear gain), divided by the DCG of the ideal
  ranking, i.e. the query's judged grades sorted high to low (whether retrieved or not);
* Recall@k: relevant documents among the first k, over all relevant documents of the query;
* MRR@k: 1 / rank of the first relevant document within the first k, else 0.

A query without any relevant document cannot be scored by any ranking, so ``load_beir`` leaves
it out (and so does ``evaluate``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, int]  # judged document id → grade, for one query


def ndcg_at_k(ranking: list[str], qrels: Qrels, k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first ``k`` documents of ``ranking``."""
    ideal = sorted((grade for grade in qrels.values() if grade > 0), reverse=True)[:k]
    ideal_dcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    if ideal_dcg == 0:
        return 0.0
    dcg = sum(max(qrels.get(doc_id, 0), 0) / math.log2(rank + 1) for rank, doc_id in enumerate(ranking[:k], start=1))
    return dcg / ideal_dcg


def recall_at_k(ranking: list[str], qrels: Qrels, k: int = 100) -> float:
    """Share of the query's relevant documents found among the first ``k``."""
    relevant = {doc_id for doc_id, grade in qrels.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: list[str], qrels: Qrels, k: int = 10) -> float:
    """Reciprocal rank of the first relevant document among the first ``k`` (0 when none)."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if qrels.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate(
    rankings: dict[str, list[str]], qrels: dict[str, Qrels], *, deep_rankings: dict[str, list[str]] | None = None
) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries of ``qrels`` that have a relevant document.

    ``rankings`` maps each query id to its ranked document ids; Recall@100 reads ``deep_rankings``
    instead where given (a search deeper than the one the top ten come from). A query missing
    from a ranking counts as retrieving nothing.
    """
    judged = [query_id for query_id, grades in qrels.items() if any(grade > 0 for grade in grades.values())]
    if not judged:
        raise ValueError("no query has a relevant document")
    deep_rankings = rankings if deep_rankings is None else deep_rankings
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for query_id in judged:
        ranking = rankings.get(query_id, [])
        totals["ndcg@10"] += ndcg_at_k(ranking, qrels[query_id], 10)
        totals["recall@100"] += recall_at_k(deep_rankings.get(query_id, []), qrels[query_id], 100)
        totals["mrr@10"] += mrr_at_k(ranking, qrels[query_id], 10)
    return {name: total / len(judged) for name, total in totals.items()}


def unique_in_order(ids: Iterable[Hashable]) -> list:
    """Each id once, at its first (best) position: a ranking of chunks read as one of documents."""
    return list(dict.fromkeys(ids))


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # document id → (title, text)
    queries: dict[str, str]  # query id → text, for the queries of ``qrels``
    qrels: dict[str, Qrels]  # query id → judgements: queries with a text and a relevant document


def load_beir(folder: Path, split: str) -> BeirDataset:
    """A BEIR folder: ``corpus.jsonl`` (_id, title, text), ``queries.jsonl`` (_id, text) and
    ``qrels/<split>.tsv`` (query-id, corpus-id, score, after a header line)."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a BEIR folder, or no {split!r} split")
    corpus = {}
    for row in _jsonl(folder / "corpus.jsonl"):
        corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    texts = {str(row["_id"]): row["text"] for row in _jsonl(folder / "queries.jsonl")}
    qrels: dict[str, Qrels] = {}
    with qrels_path.open(newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows, None)  # the header line
        for row in rows:
            if len(row) >= 3 and row[0] in texts:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    qrels = {query_id: grades for query_id, grades in qrels.items() if any(grade > 0 for grade in grades.values())}
    queries = {query_id: texts[query_id] for query_id in qrels}
    return BeirDataset(name=folder.resolve().name, corpus=corpus, queries=queries, qrels=qrels)


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open() as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
