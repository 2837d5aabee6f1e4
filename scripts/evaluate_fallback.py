"""The lexical fallback (PostgreSQL's built-in full-text search) fused with dense, against dense alone and
against BM25, on a BEIR folder: the figures of docs/benchmarks.md, "The full-text fallback".

    REDIS_URL=... .venv/bin/python scripts/evaluate_fallback.py ../shared/data/scifact --split train \\
        [--limit-queries N] [--out FILE.json]

The corpus is indexed into a temporary assistant exactly as ``manage.py evaluate_retrieval`` indexes it (its
own code), and the fallback's GIN index is added to that assistant's partition (a deployment without
pg_textsearch has it, from migration 0002). Then each judged query reads each leg once, as hybrid search
reads it (``CANDIDATES`` rows, the product's own SQL): BM25, the full-text fallback, and the vectors. Every
ranking below is fused from those same lists by ``ingestion.search.hybrid`` (``fuse``, then the cap of chunks
per document) and read as documents: nDCG@10 and MRR@10 over the top ten documents (Recall@100 is not
measured: it needs a deeper read). The team is removed afterwards, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from assistants.management.commands.evaluate_retrieval import Command, remove  # noqa: E402
from assistants.services import assistant_create, team_create  # noqa: E402
from ingestion.embedding import get_embedder  # noqa: E402
from ingestion.search import hybrid  # noqa: E402
from ingestion.search.metrics import evaluate, load_beir, unique_in_order  # noqa: E402
from ingestion.spaces import lexical_backend, space_active  # noqa: E402

TOP_CHUNKS = 10 * hybrid.MAX_CHUNKS_PER_DOCUMENT
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def lexical(space, query: str, backend: str) -> hybrid.Scored:
    """The product's lexical leg under ``backend`` ('bm25' or 'fts')."""
    settings.LEXICAL_BACKEND = "fts" if backend == "fts" else "auto"
    lexical_backend.cache_clear()
    try:
        assert lexical_backend() == backend, f"this database has no {backend} leg"
        return hybrid.lexical_ranking(space, query, hybrid.CANDIDATES)
    finally:
        settings.LEXICAL_BACKEND = "auto"
        lexical_backend.cache_clear()


def documents(fused: hybrid.Fused, document_of: dict[int, int], corpus_id: dict[int, str]) -> list[str]:
    """The top ten documents of a fused chunk ranking, after the per-document cap, as search returns them."""
    counts: dict[int, int] = {}
    kept = []
    for chunk_id, _, _ in fused:
        document = document_of[chunk_id]
        counts[document] = counts.get(document, 0) + 1
        if counts[document] <= hybrid.MAX_CHUNKS_PER_DOCUMENT:
            kept.append(document)
    return unique_in_order(corpus_id[d] for d in kept[:TOP_CHUNKS])[:10]


def variants(legs: dict[str, hybrid.Scored]) -> dict[str, hybrid.Fused]:
    """Every ranking compared, from one read of each leg."""
    dense = legs["dense"]
    out = {"dense alone": hybrid.fuse({"dense": dense}, hybrid.Fusion("rrf"))}
    for backend in ("bm25", "fts"):
        lex = legs[backend]
        out[f"{backend} alone"] = hybrid.fuse({"lexical": lex}, hybrid.Fusion("rrf"))
        out[f"{backend} + dense, rrf"] = hybrid.fuse({"lexical": lex, "dense": dense}, hybrid.Fusion("rrf"))
        for alpha in ALPHAS:
            fusion = hybrid.Fusion("weighted", alpha)
            out[f"{backend} + dense, weighted@{alpha:.2f}"] = hybrid.fuse({"lexical": lex, "dense": dense}, fusion)
    # Dense-anchored: the full-text leg may only re-order the chunks the dense leg found, never add its own.
    found = {chunk_id for chunk_id, _ in dense}
    anchored = [(chunk_id, score) for chunk_id, score in legs["fts"] if chunk_id in found]
    for alpha in (0.5, 0.7):
        fusion = hybrid.Fusion("weighted", alpha)
        out[f"fts + dense, anchored weighted@{alpha:.2f}"] = hybrid.fuse({"lexical": anchored, "dense": dense}, fusion)
    out["fts + dense, the fallback's fusion"] = hybrid.fuse(
        {"lexical": legs["fts"], "dense": dense}, hybrid.fallback_fusion()
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit-queries", type=int, default=0)
    parser.add_argument("--out", default="")
    options = parser.parse_args()
    dataset = load_beir(Path(options.dir), options.split)
    if options.limit_queries:
        dataset.qrels = dict(list(dataset.qrels.items())[: options.limit_queries])

    label = f"eval-fallback-{dataset.name}-{timezone.now():%Y%m%d-%H%M%S}"
    owner = User.objects.create_user(username=label[:150])
    team = team_create(name=label[:120], owner=owner)
    try:
        space = space_active(assistant_create(team=team, name=label[:120]).pk)
        index_seconds, chunks = Command().index(dataset, space, label)
        with connection.cursor() as cursor:  # the fallback's index, as migration 0002 makes it without pg_textsearch
            cursor.execute(
                f"create index on {space.partition_name} using gin (to_tsvector('english'::regconfig, search_text))"
            )
            cursor.execute(f"analyze {space.partition_name}")
            cursor.execute(f"select id, document_id from {space.partition_name}")
            document_of = dict(cursor.fetchall())
            cursor.execute(
                "select d.id, d.url from ingestion_document d join ingestion_source s on s.id = d.source_id"
                " where s.assistant_id = %s",
                [space.assistant_id],
            )
            prefix = len(f"beir://{dataset.name}/")
            corpus_id = {pk: url[prefix:] for pk, url in cursor.fetchall()}
        query_ids = list(dataset.qrels)
        vectors = get_embedder(space.model_name).embed_queries([dataset.queries[q] for q in query_ids])
        rankings: dict[str, dict[str, list[str]]] = {}
        seconds = {"bm25": 0.0, "fts": 0.0, "dense": 0.0}
        for done, (query_id, vector) in enumerate(zip(query_ids, vectors), start=1):
            query = dataset.queries[query_id]
            legs = {}
            for leg in ("bm25", "fts", "dense"):
                begun = time.perf_counter()
                legs[leg] = (
                    hybrid.dense_ranking(space, vector, hybrid.CANDIDATES)
                    if leg == "dense"
                    else lexical(space, query, leg)
                )
                seconds[leg] += time.perf_counter() - begun
            for name, fused in variants(legs).items():
                rankings.setdefault(name, {})[query_id] = documents(fused, document_of, corpus_id)
            if done % 100 == 0:
                print(f"{done}/{len(query_ids)} queries", file=sys.stderr, flush=True)
    finally:
        remove(team, owner)

    report = {
        "dataset": dataset.name,
        "split": options.split,
        "queries": len(dataset.qrels),
        "corpus_size": len(dataset.corpus),
        "chunks": chunks,
        "index_seconds": round(index_seconds, 1),
        "embedding_model": space.model_name,
        "fallback_fusion": hybrid.fallback_fusion().label,
        "leg_ms_mean": {leg: round(1000 * total / len(query_ids), 1) for leg, total in seconds.items()},
        "results": {
            name: {
                key: round(value, 4) for key, value in evaluate(ranked, dataset.qrels).items() if key != "recall@100"
            }
            for name, ranked in rankings.items()
        },
    }
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=2))
    print(f"{report['queries']} queries, {report['chunks']} chunks; mean ms per leg {report['leg_ms_mean']}")
    for name, metrics in report["results"].items():
        print(f"{name:<38} nDCG@10 {metrics['ndcg@10']:.4f}  MRR@10 {metrics['mrr@10']:.4f}")


if __name__ == "__main__":
    main()
