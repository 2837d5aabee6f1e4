"""Retrieval quality of the real pipeline on a BEIR-format collection, per retrieval mode.

    python manage.py evaluate_retrieval DIR [--split test] [--alphas 0.3,0.5] [--rerank MODEL]
        [--rerank-depth 30] [--limit-queries N] [--keep | --assistant SLUG] --out FILE.json

DIR holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``. The command creates an
isolated team, owner and assistant (``eval-<dirname>-<timestamp>``) through the real services, so
the collection gets an embedding space and chunk partition of its own; stores one document per
corpus entry (``beir://<dirname>/<_id>``, the title as heading of one section) and indexes each
with ``document_index``: the product's chunking, embedding and tables (every chunk text is first
embedded in large batches into the embedding cache, which ``document_index`` then reads). Then
every judged query of the split runs through ``chunk_search`` in the lexical, dense and hybrid
modes, and the command prints and writes nDCG@10, Recall@100 and MRR@10 per mode
(``ingestion.search.metrics``), with the search latency. Afterwards the team, its owner and the space's partition are removed, also on
failure, unless ``--keep``; no other assistant's rows are read or written. ``--assistant SLUG``
searches the index a ``--keep`` run left instead (the slug it printed; the collection's documents
checked against the folder), so a change to search can be measured without indexing again (SciFact
train: 20 minutes of indexing on a 2-core machine); that index is kept.

The searches are the product's: the query vector from the space's model as the answering code
makes it (all queries in one batch: the engine's vectors do not depend on batching), and
``chunk_search`` with its default cap of chunks per document and its page ranking (a
document's best chunk carries the decayed sum over its sections, ``RETRIEVAL_PAGE_DECAY``). The metrics are per
document, so each document ranks at its best chunk; the cap never moves a document's first
chunk, it only leaves room for more documents within k chunks. The top ten come from a search
of 10 documents' worth of chunks, which reads the legs to the same depth as the product's own
searches (``CANDIDATES`` rows each), so nDCG@10 and MRR@10 measure the ranking visitors get;
Recall@100 comes from a second, deeper search of 100 documents' worth. Latency is the wall time
of the first search, query embedding excluded (reported once, for all queries, on its own).

The ``hybrid`` mode uses the configured fusion (``RETRIEVAL_FUSION``); ``fusions`` in the report
compares hybrid search fused by reciprocal rank and by weighted scores, once per ``--alphas`` value
(default: the configured ``RETRIEVAL_FUSION_ALPHA``). All fusions of a query are computed from the
same candidate lists (``chunk_search_fusions``), so one indexed collection serves a whole sweep.

``--rerank MODEL`` adds ``hybrid+rerank``: the first ``--rerank-depth`` chunks of the hybrid
search (by default ``RERANK_CANDIDATES``, 30: what answers rerank) re-ordered by the reranker's
scores (``ingestion.search.rerank``), documents ranked at their best chunk; Recall@100 reads the
reranked documents, then the rest of the deep hybrid ranking. Its latency is the hybrid search
plus the reranking of that query.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from assistants.models import Assistant, Team
from assistants.services import assistant_create, team_create
from ingestion import services
from ingestion.chunking import chunk_sections
from ingestion.embedding import get_embedder
from ingestion.models import Chunk, Document, EmbeddingSpace, Source
from ingestion.search.hybrid import MAX_CHUNKS_PER_DOCUMENT, Fusion, chunk_search, chunk_search_fusions, default_fusion
from ingestion.search.metrics import BeirDataset, evaluate, load_beir, unique_in_order
from ingestion.search.rerank import get_reranker, rerank
from ingestion.spaces import lexical_backend, space_active, space_drop

MODES = ("lexical", "dense", "hybrid")
TOP_CHUNKS = 10 * MAX_CHUNKS_PER_DOCUMENT  # at least 10 documents under the per-document cap
DEEP_CHUNKS = 100 * MAX_CHUNKS_PER_DOCUMENT  # at least 100 documents
PROGRESS_EVERY = 500
BULK_BATCH = 500
EMBED_AHEAD_BATCH = 2000


class Command(BaseCommand):
    help = "Measure nDCG@10, Recall@100 and MRR@10 of lexical, dense and hybrid retrieval on a BEIR folder."

    def add_arguments(self, parser):
        parser.add_argument("dir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
        parser.add_argument("--split", default="test", help="qrels file to evaluate (default: test)")
        parser.add_argument(
            "--alphas",
            default="",
            metavar="A,B,…",
            help="dense weights of the weighted fusion to compare (default: RETRIEVAL_FUSION_ALPHA)",
        )
        parser.add_argument("--rerank", default="", metavar="MODEL", help="also report hybrid search reranked by MODEL")
        parser.add_argument(
            "--rerank-depth",
            type=int,
            default=0,
            metavar="N",
            help="hybrid chunks the reranker re-orders (default: RERANK_CANDIDATES, as answers do)",
        )
        parser.add_argument("--limit-queries", type=int, default=0, metavar="N", help="only the first N judged queries")
        parser.add_argument("--keep", action="store_true", help="keep the evaluation team and its index afterwards")
        parser.add_argument(
            "--assistant",
            default="",
            metavar="SLUG",
            help="search the index a --keep run left (its assistant's slug) instead of indexing again; it is kept",
        )
        parser.add_argument("--out", required=True, help="where to write the JSON report")

    def handle(self, *args, **options):
        fusions = comparisons(options["alphas"])
        options["rerank_depth"] = options["rerank_depth"] or settings.RERANK_CANDIDATES
        reranker = None
        if options["rerank"]:
            try:
                reranker = get_reranker(options["rerank"])
            except (OSError, ValueError) as error:
                raise CommandError(f"cannot load reranker {options['rerank']!r}: {error}") from None
        try:
            dataset = load_beir(Path(options["dir"]), options["split"])
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        if options["limit_queries"] > 0:
            dataset.qrels = dict(list(dataset.qrels.items())[: options["limit_queries"]])
        if not dataset.qrels:
            raise CommandError(f"no query of the {options['split']!r} split has a relevant document")

        if options["assistant"]:
            space, chunks = kept_index(options["assistant"], dataset)
            index_seconds = 0.0
            embedding_seconds, rankings, compared = self.search(
                dataset, space, fusions, reranker, options["rerank_depth"]
            )
        else:
            label = f"eval-{dataset.name}-{timezone.now():%Y%m%d-%H%M%S}"
            owner = User.objects.create_user(username=label[:150])
            team = team_create(name=label[:120], owner=owner)
            try:
                assistant = assistant_create(team=team, name=label[:120])
                space = space_active(assistant.pk)
                index_seconds, chunks = self.index(dataset, space, label)
                embedding_seconds, rankings, compared = self.search(
                    dataset, space, fusions, reranker, options["rerank_depth"]
                )
            finally:
                if options["keep"]:
                    self.stderr.write(f"kept team {team.slug!r}: search it again with --assistant {assistant.slug}")
                else:
                    remove(team, owner)

        report = {
            "dataset": dataset.name,
            "split": options["split"],
            "queries": len(dataset.qrels),
            "corpus_size": len(dataset.corpus),
            "chunks": chunks,
            "index_seconds": round(index_seconds, 1),  # 0 for a kept index (--assistant)
            "reused_index": bool(options["assistant"]),
            "embedding_model": space.model_name,
            "lexical_backend": lexical_backend(),
            "per_document": MAX_CHUNKS_PER_DOCUMENT,
            "query_embedding_seconds": round(embedding_seconds, 2),
            "fusion": default_fusion().label,
            "modes": {
                mode: evaluate(top, dataset.qrels, deep_rankings=deep) for mode, (top, deep, _) in rankings.items()
            },
            "fusions": {
                label: evaluate(top, dataset.qrels, deep_rankings=deep) for label, (top, deep) in compared.items()
            },
            "latency_ms": {
                mode: {f"p{q}": round(float(np.percentile(times, q)), 2) for q in (50, 95)}
                for mode, (_, _, times) in rankings.items()
            },
        }
        if reranker is not None:
            report["rerank"] = {"model": options["rerank"], "depth": options["rerank_depth"]}
        Path(options["out"]).write_text(json.dumps(report, indent=2))
        self.stdout.write(table(report))

    def index(self, dataset: BeirDataset, space: EmbeddingSpace, label: str) -> tuple[float, int]:
        """One document per corpus entry, indexed by the real pipeline; (seconds, chunks written).

        The embedding model is loaded before the clock starts, so the time is indexing alone.
        """
        get_embedder(space.model_name)
        started = time.perf_counter()
        source = Source.objects.create(assistant_id=space.assistant_id, kind=Source.Kind.DOCUMENT, name=label)
        now = timezone.now()
        documents = []
        for doc_id, (title, text) in dataset.corpus.items():
            title = title[:500]
            sections = [{"heading_path": [title] if title else [], "text": text, "anchor": ""}]
            documents.append(
                Document(
                    source=source,
                    url=f"beir://{dataset.name}/{doc_id}",
                    title=title,
                    sections=sections,
                    content_hash=services.sections_hash(title, sections),
                    fetched_at=now,
                )
            )
        Document.objects.bulk_create(documents, batch_size=BULK_BATCH)
        self.embed_ahead(documents, space)
        chunks = 0
        for done, document in enumerate(documents, start=1):
            chunks += services.document_index(document=document)
            if done % PROGRESS_EVERY == 0 or done == len(documents):
                elapsed = time.perf_counter() - started
                self.stderr.write(f"indexed {done}/{len(documents)} documents, {chunks} chunks, {elapsed:.0f} s")
        return time.perf_counter() - started, chunks

    def embed_ahead(self, documents: list[Document], space: EmbeddingSpace) -> None:
        """Fill the embedding cache with every chunk text in large, length-sorted batches first, so
        the per-document indexing below finds its vectors cached instead of embedding two or three
        texts at a time (the same texts, chunked the same way, so the same vectors)."""
        embedder = get_embedder(space.model_name)
        texts = [
            draft.search_text
            for document in documents
            for draft in chunk_sections(
                document.sections, count_tokens=embedder.count_tokens, max_tokens=settings.CHUNK_MAX_TOKENS
            )
        ]
        started = time.perf_counter()
        for begin in range(0, len(texts), EMBED_AHEAD_BATCH):
            services.embeddings_cached(
                model_name=space.model_name, texts=texts[begin : begin + EMBED_AHEAD_BATCH], embedder=embedder
            )
            done = min(begin + EMBED_AHEAD_BATCH, len(texts))
            self.stderr.write(f"embedded {done}/{len(texts)} chunk texts, {time.perf_counter() - started:.0f} s")

    def search(self, dataset: BeirDataset, space: EmbeddingSpace, fusions: dict[str, Fusion], reranker, depth: int):
        """Per mode: the top-ten rankings, the deep rankings (corpus ids) and each top search's ms;
        per compared fusion: the top-ten and deep rankings."""
        prefix = len(f"beir://{dataset.name}/")
        documents = Document.objects.filter(source__assistant_id=space.assistant_id)
        corpus_ids = {pk: url[prefix:] for pk, url in documents.values_list("pk", "url")}

        def ranked(hits, n: int) -> list[str]:
            return unique_in_order(corpus_ids[hit.document_id] for hit in hits)[:n]

        query_ids = list(dataset.qrels)
        started = time.perf_counter()
        vectors = get_embedder(space.model_name).embed_queries([dataset.queries[query_id] for query_id in query_ids])
        embedding_seconds = time.perf_counter() - started
        rankings = {}
        for mode in MODES:
            top, deep, times = {}, {}, []
            for query_id, vector in zip(query_ids, vectors):
                query = dataset.queries[query_id]
                begun = time.perf_counter()
                hits = chunk_search(space=space, query=query, vector=vector, k=TOP_CHUNKS, mode=mode)
                times.append((time.perf_counter() - begun) * 1000)
                top[query_id] = ranked(hits, 10)
                hits = chunk_search(space=space, query=query, vector=vector, k=DEEP_CHUNKS, mode=mode)
                deep[query_id] = ranked(hits, 100)
            rankings[mode] = (top, deep, times)
            self.stderr.write(f"searched {len(query_ids)} queries in {mode} mode")
        compared = {label: ({}, {}) for label in fusions}
        for query_id, vector in zip(query_ids, vectors):
            query = dataset.queries[query_id]
            for k, slot, n in ((TOP_CHUNKS, 0, 10), (DEEP_CHUNKS, 1, 100)):
                found = chunk_search_fusions(space=space, query=query, vector=vector, k=k, fusions=fusions)
                for label, hits in found.items():
                    compared[label][slot][query_id] = ranked(hits, n)
        self.stderr.write(f"compared {len(fusions)} fusions")
        if reranker is not None:
            top, deep, times = {}, {}, []
            plain_deep = rankings["hybrid"][1]
            for query_id, vector in zip(query_ids, vectors):
                query = dataset.queries[query_id]
                begun = time.perf_counter()
                hits = chunk_search(space=space, query=query, vector=vector, k=depth, mode="hybrid")
                hits = rerank(hits, query, reranker)
                times.append((time.perf_counter() - begun) * 1000)
                reranked = ranked(hits, depth)
                top[query_id] = reranked[:10]
                deep[query_id] = unique_in_order(reranked + plain_deep[query_id])[:100]
            rankings["hybrid+rerank"] = (top, deep, times)
            self.stderr.write(f"reranked {len(query_ids)} queries with {reranker.name}")
        return embedding_seconds, rankings, compared


def kept_index(slug: str, dataset: BeirDataset) -> tuple[EmbeddingSpace, int]:
    """The active space of the assistant a ``--keep`` run left, and its chunk count; refused unless
    that assistant holds exactly this collection's documents (``beir://<name>/<id>``, every id once)."""
    assistant = Assistant.objects.filter(slug=slug).first()
    if assistant is None:
        raise CommandError(f"--assistant {slug!r}: no such assistant")
    space = space_active(assistant.pk)
    prefix = f"beir://{dataset.name}/"
    urls = Document.objects.filter(source__assistant=assistant).values_list("url", flat=True)
    ids = {url[len(prefix) :] for url in urls if url.startswith(prefix)}
    if space is None or ids != set(dataset.corpus) or len(urls) != len(dataset.corpus):
        raise CommandError(
            f"--assistant {slug!r} does not hold the {dataset.name!r} collection as evaluate_retrieval indexed it"
        )
    return space, Chunk.objects.filter(space=space).count()


def comparisons(alphas: str) -> dict[str, Fusion]:
    """The fusions to compare: reciprocal rank, and weighted at each alpha of ``A,B,…``."""
    try:
        values = [float(value) for value in alphas.split(",") if value.strip()] or [default_fusion().alpha]
        weighted = [Fusion("weighted", value) for value in values]
    except ValueError as error:
        raise CommandError(f"--alphas {alphas!r}: {error}") from None
    return {fusion.label: fusion for fusion in [Fusion("rrf"), *weighted]}


def remove(team: Team, owner: User) -> None:
    """Drop the evaluation's chunk partitions, then its team (cascading to everything else) and owner."""
    for space in EmbeddingSpace.objects.filter(assistant__team=team):
        space_drop(space=space)
    team.delete()
    owner.delete()


def table(report: dict) -> str:
    lines = [
        f"{report['dataset']} ({report['split']}): {report['queries']} queries, {report['corpus_size']} documents,"
        f" {report['chunks']} chunks, "
        + ("a kept index" if report.get("reused_index") else f"indexed in {report['index_seconds']:.0f} s"),
        f"{'mode':<14} {'nDCG@10':>8} {'Recall@100':>11} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}",
    ]
    for mode, metrics in report["modes"].items():
        latency = report["latency_ms"][mode]
        lines.append(
            f"{mode:<14} {metrics['ndcg@10']:>8.4f} {metrics['recall@100']:>11.4f} {metrics['mrr@10']:>7.4f}"
            f" {latency['p50']:>7.1f} {latency['p95']:>7.1f}"
        )
    lines.append(f"hybrid fusions (the hybrid mode above: {report['fusion']})")
    for label, metrics in report["fusions"].items():
        lines.append(f"{label:<14} {metrics['ndcg@10']:>8.4f} {metrics['recall@100']:>11.4f} {metrics['mrr@10']:>7.4f}")
    return "\n".join(lines)
