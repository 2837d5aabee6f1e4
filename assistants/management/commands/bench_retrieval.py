"""Hybrid retrieval at scale: latency, recall and k rows per assistant, on synthetic chunks.

    python manage.py bench_retrieval [--chunks 1000000] [--assistants 100] [--queries 200] [--out FILE.json]

The command creates an isolated team and owner (``bench-<timestamp>``) with ``--assistants``
assistants through the real services, so each gets its own embedding space, chunk partition and
indexes, exactly as a customer's would. It writes ``--chunks`` synthetic chunks spread evenly over
them with COPY (ten chunks per document): clustered, normalised vectors of the space's dimensions
(384 for the default model) and 20 to 80 words of text drawn from a Zipf-like vocabulary. The
BM25 index fills as rows arrive; each partition's HNSW index is dropped before the load and built
again after it from its own definition (a bulk build is much faster than row-by-row inserts).

Then ``--queries`` queries, spread over the assistants, each near one of the assistant's chunks
(its vector plus noise, four of its words), run through the product's ``chunk_search`` (hybrid,
top 10, the per-page cap) twice: on the HNSW index, and with the dense leg scanning the partition
exactly (the baseline, same run, same queries, interleaved), then each leg alone. Reported:
latency p50/p95 of both and of each leg, recall@10 of the hybrid and of the dense leg against
their exact counterparts, and the share of queries that return k rows; each also as a ratio
against the exact baseline. A first untimed pass warms the cache. Everything the command created
is removed afterwards, also on failure; no other assistant's rows are read or written.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from assistants.management.commands.evaluate_retrieval import remove
from assistants.services import assistant_create, team_create
from ingestion.models import Document, EmbeddingSpace, Source
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import space_active, vector_index_create, vector_index_name

K = 10
MIN_WORDS, MAX_WORDS = 20, 80  # words per chunk
CHUNKS_PER_DOCUMENT = 10
CHUNKS_PER_CLUSTER = 50
VOCABULARY_SIZE = 20000
SYLLABLES = "ka lo mi ne ru ta vi so pe du ga ri mo ze lu fa ni to be sa".split()
CLUSTER_SPREAD = 0.6  # per-dimension noise around a cluster centre (centres are N(0, 1))
QUERY_NOISE = 0.5  # length of the random vector added to a chunk's (unit) vector to make a query's
COPY_COLUMNS = "space_id, document_id, ordinal, text, search_text, token_count, embedding"


def vocabulary(size: int = VOCABULARY_SIZE) -> np.ndarray:
    """``size`` distinct made-up words of three to five syllables, and their Zipf-like weights."""
    rng = np.random.default_rng(12345)
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES, size=int(rng.integers(3, 6))))] = None
    return np.array(list(words))


def synthetic_chunks(
    rng: np.random.Generator, count: int, dims: int, words: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """``count`` clustered unit vectors of ``dims`` dimensions and texts of 20 to 80 words."""
    clusters = max(1, count // CHUNKS_PER_CLUSTER)
    centres = rng.standard_normal((clusters, dims), dtype=np.float32)
    vectors = centres[rng.integers(0, clusters, size=count)]
    vectors += CLUSTER_SPREAD * rng.standard_normal((count, dims), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    weights = 1.0 / (np.arange(len(words)) + 10.0)
    picks = words[rng.choice(len(words), size=(count, MAX_WORDS), p=weights / weights.sum())]
    # Lengths vary, as real chunks' do (equal lengths would give many chunks equal BM25 scores).
    lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, size=count)
    return vectors, [" ".join(row[:length]) for row, length in zip(picks, lengths)]


def synthetic_query(rng: np.random.Generator, vector: np.ndarray, text: str) -> tuple[np.ndarray, str]:
    """A query near one chunk: its vector plus noise (normalised), four of its words."""
    dims = vector.shape[0]
    noisy = vector + (QUERY_NOISE / np.sqrt(dims)) * rng.standard_normal(dims, dtype=np.float32)
    words = text.split()
    return noisy / np.linalg.norm(noisy), " ".join(rng.choice(words, size=4, replace=False))


def vector_binary(vector: np.ndarray) -> bytes:
    """pgvector's binary format: dimensions (int16), an unused int16, then big-endian float4s."""
    return struct.pack(">HH", vector.shape[0], 0) + vector.astype(">f4").tobytes()


def copy_chunks(
    space: EmbeddingSpace,
    document_ids: list[int],
    vectors: np.ndarray,
    texts: list[str],
    per_document: int = CHUNKS_PER_DOCUMENT,
) -> None:
    """Write chunks into the space's partition with binary COPY, ``per_document`` per document in
    order (heading path and anchor left at their defaults)."""
    with connection.cursor() as cursor:
        with cursor.copy(f"copy {space.partition_name} ({COPY_COLUMNS}) from stdin (format binary)") as copy:
            copy.set_types(["int8", "int8", "int4", "text", "text", "int4", "bytea"])
            for index, (vector, text) in enumerate(zip(vectors, texts)):
                document_id = document_ids[index // per_document]
                copy.write_row(
                    (
                        space.pk,
                        document_id,
                        index % per_document,
                        text,
                        text,
                        text.count(" ") + 1,
                        vector_binary(vector),
                    )
                )


def synthetic_documents(
    space: EmbeddingSpace, chunks: int, label: str, per_document: int = CHUNKS_PER_DOCUMENT
) -> list[int]:
    """One document source for the space's assistant and enough ready documents for ``chunks``."""
    source = Source.objects.create(assistant_id=space.assistant_id, kind=Source.Kind.DOCUMENT, name=label[:200])
    count = -(-chunks // per_document)
    documents = Document.objects.bulk_create(
        [
            Document(source=source, url=f"bench://{space.pk}/{i}", title=f"Document {i}", status=Document.Status.READY)
            for i in range(count)
        ],
        batch_size=2000,
    )
    return [document.pk for document in documents]


def load_chunks(
    space: EmbeddingSpace, vectors: np.ndarray, texts: list[str], label: str, per_document: int = CHUNKS_PER_DOCUMENT
) -> tuple[float, float]:
    """Documents and chunks into the space: its HNSW index dropped, rows copied (BM25 filling as they
    arrive), the index built (as indexing does once a space is big enough), statistics refreshed.
    (copy s, index s)"""
    document_ids = synthetic_documents(space, len(texts), label, per_document)
    with connection.cursor() as cursor:
        cursor.execute(f"drop index if exists {vector_index_name(space)}")
    begun = time.perf_counter()
    copy_chunks(space, document_ids, vectors, texts, per_document)
    copied = time.perf_counter() - begun
    begun = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("set maintenance_work_mem = '1GB'")
        vector_index_create(space)
        cursor.execute("reset maintenance_work_mem")
        cursor.execute(f"analyze {space.partition_name}")
    return copied, time.perf_counter() - begun


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 95)}


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None


class Command(BaseCommand):
    help = "Benchmark hybrid retrieval over many assistants' synthetic chunks: latency, recall@10, k rows."

    def add_arguments(self, parser):
        parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks in all (default 1,000,000)")
        parser.add_argument(
            "--assistants", type=int, default=100, help="assistants (spaces) sharing them (default 100)"
        )
        parser.add_argument(
            "--queries", type=int, default=200, help="queries, spread over the assistants (default 200)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default="", help="also write the report as JSON here")

    def handle(self, *args, **options):
        chunks, assistants, queries = options["chunks"], options["assistants"], options["queries"]
        if assistants < 1 or queries < 1 or chunks < assistants * K:
            raise CommandError(f"need at least one assistant and query, and {K} chunks per assistant")
        rng = np.random.default_rng(options["seed"])
        label = f"bench-{timezone.now():%Y%m%d-%H%M%S}"
        owner = User.objects.create_user(username=label)
        team = team_create(name=label, owner=owner)
        try:
            build, workload = self.build(team, label, rng, chunks, assistants, queries)
            measured = self.measure(workload)
        finally:
            remove(team, owner)
        report = {
            "chunks": chunks,
            "assistants": assistants,
            "queries": len(workload),
            "k": K,
            "build_seconds": build,
            **measured,
        }
        if options["out"]:
            Path(options["out"]).write_text(json.dumps(report, indent=2))
        self.stdout.write(table(report))

    def build(self, team, label, rng, chunks, assistants, queries):
        """The assistants, their chunks and indexes; the queries (space, vector, text) to run."""
        words = vocabulary()
        per_space = [chunks // assistants + (1 if i < chunks % assistants else 0) for i in range(assistants)]
        per_query = [queries // assistants + (1 if i < queries % assistants else 0) for i in range(assistants)]
        timings = {"spaces": 0.0, "copy": 0.0, "hnsw": 0.0}
        workload = []
        started = time.perf_counter()
        for number, (count, asked) in enumerate(zip(per_space, per_query), start=1):
            begun = time.perf_counter()
            space = space_active(assistant_create(team=team, name=f"{label}-{number}").pk)
            vectors, texts = synthetic_chunks(rng, count, space.dims, words)
            timings["spaces"] += time.perf_counter() - begun
            copied, indexed = load_chunks(space, vectors, texts, label)
            timings["copy"] += copied
            timings["hnsw"] += indexed
            for target in rng.choice(count, size=asked, replace=count < asked):
                workload.append((space, *synthetic_query(rng, vectors[target], texts[target])))
            if number % 10 == 0 or number == assistants:
                self.stderr.write(
                    f"built {number}/{assistants} assistants, {sum(per_space[:number])} chunks,"
                    f" {time.perf_counter() - started:.0f} s"
                )
        timings = {name: round(seconds, 1) for name, seconds in timings.items()}
        timings["total"] = round(time.perf_counter() - started, 1)
        return timings, workload

    def measure(self, workload) -> dict:
        def search(space, vector, text, **options):
            begun = time.perf_counter()
            hits = chunk_search(space=space, query=text, vector=vector, k=K, **options)
            return (time.perf_counter() - begun) * 1000, [hit.chunk_id for hit in hits]

        for space, vector, text in workload:  # warm-up, untimed
            search(space, vector, text)
            search(space, vector, text, exact=True)
        times = {"hnsw": [], "exact": [], "lexical": [], "dense": []}
        recall = {"hybrid": [], "dense": []}
        full = {"hnsw": 0, "exact": 0, "dense": 0}
        for space, vector, text in workload:
            elapsed, found = search(space, vector, text)
            times["hnsw"].append(elapsed)
            elapsed, expected = search(space, vector, text, exact=True)
            times["exact"].append(elapsed)
            recall["hybrid"].append(len(set(found) & set(expected)) / max(1, len(expected)))
            full["hnsw"] += len(found) == K
            full["exact"] += len(expected) == K
            elapsed, dense = search(space, vector, text, mode="dense", per_document=None)
            times["dense"].append(elapsed)
            _, dense_exact = search(space, vector, text, mode="dense", per_document=None, exact=True)
            elapsed, _ = search(space, vector, text, mode="lexical")
            times["lexical"].append(elapsed)
            recall["dense"].append(len(set(dense) & set(dense_exact)) / max(1, len(dense_exact)))
            full["dense"] += len(dense) == K
        count = len(workload)
        latency = {name: percentiles(values) for name, values in times.items()}
        k_rows = {name: round(value / count, 4) for name, value in full.items()}
        return {
            "latency_ms": latency,
            "latency_ratio_to_exact": {q: ratio(latency["hnsw"][q], latency["exact"][q]) for q in ("p50", "p95")},
            "recall@10": {name: round(float(np.mean(values)), 4) for name, values in recall.items()},
            "k_rows_share": k_rows,
            "k_rows_ratio_to_exact": ratio(k_rows["hnsw"], k_rows["exact"]),
        }


def table(report: dict) -> str:
    latency, build = report["latency_ms"], report["build_seconds"]
    return "\n".join(
        [
            f"{report['chunks']} chunks over {report['assistants']} assistants, {report['queries']} queries, top {report['k']}",
            f"build: {build['total']:.0f} s (spaces, documents, synthetic data {build['spaces']:.0f} s, COPY with BM25"
            f" {build['copy']:.0f} s, HNSW {build['hnsw']:.0f} s)",
            f"hybrid latency, HNSW:  p50 {latency['hnsw']['p50']:.1f} ms, p95 {latency['hnsw']['p95']:.1f} ms",
            f"hybrid latency, exact: p50 {latency['exact']['p50']:.1f} ms, p95 {latency['exact']['p95']:.1f} ms"
            f" (HNSW / exact: p50 {report['latency_ratio_to_exact']['p50']}, p95 {report['latency_ratio_to_exact']['p95']})",
            f"one leg alone: BM25 p50 {latency['lexical']['p50']:.1f} ms, p95 {latency['lexical']['p95']:.1f} ms;"
            f" HNSW p50 {latency['dense']['p50']:.1f} ms, p95 {latency['dense']['p95']:.1f} ms",
            f"recall@10 against exact: hybrid {report['recall@10']['hybrid']:.4f}, dense leg {report['recall@10']['dense']:.4f}",
            f"queries returning {report['k']} rows: hybrid HNSW {report['k_rows_share']['hnsw']:.1%},"
            f" exact {report['k_rows_share']['exact']:.1%} (ratio {report['k_rows_ratio_to_exact']}),"
            f" dense leg {report['k_rows_share']['dense']:.1%}",
        ]
    )
