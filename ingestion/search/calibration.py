"""Each assistant's "I don't know" gate, learned from its own content (never from one site's numbers).

What does a question the content covers look like here, and what does unrelated text look like?
Both are measured with the assistant's own embedding model against its own index, on:

* **covered probes**: the content asking about itself. Sampled chunks (up to 192, evenly over the partition)
  give their section heading and one prose sentence each, searched as questions; each probe's
  similarity is that of the best chunk *other than the one it came from*, so a probe does not
  find itself word for word (a real question is not a quotation either). The team's golden
  questions, when it has some, are covered probes too, searched as asked.
* **unrelated probes**: strings of random words from the embedding model's own vocabulary (or,
  for an API model without one, from the content's words), the similarity a text about nothing
  in particular reaches in this index; as many as the chunks sampled, and at least 48.

The gate's threshold on the best cosine similarity of a question to the retrieved chunks is the
midpoint between the unrelated probes' 95th percentile and the covered probes' 10th, or the former
when they overlap (the model cannot tell them apart; then the gate leans to answering). A
question in another language than the content is held to the unrelated probes' 95th percentile
only: an English-only model embeds it far from everything, on topic or not. Two more figures:
how often BM25 and the vectors agree on the top chunk by chance (on unrelated probes), which says
whether their agreement can vouch for a question; and the content's language.

The result is stored on the embedding space (``EmbeddingSpace.calibration``) when the content
changes; answering reads it, never computes it. Without one (content not calibrated yet) the
model's own unrelated-text level is the threshold (:func:`uncalibrated`).
"""

from __future__ import annotations

import functools
import random
import re
import zlib
from collections.abc import Sequence

import numpy as np
from django.db import connection

from chatsite.lib.language import majority_language
from ingestion.search.hybrid import dense_ranking, heading_path_value, lexical_ranking

VERSION = 1
# Enough probes for steady percentiles: on the Django docs (7,044 chunks) the gate's threshold, calibrated
# eight times on other samples of the same content, spread 0.352–0.406 with 48 chunks and 48 unrelated
# probes (the margin by which real questions pass or fail), and 0.369–0.385 with 192 of each
# (docs/benchmarks.md, "A steadier gate").
SAMPLED_CHUNKS = 192
UNRELATED_PROBES = 48  # at the least; as many as the chunks sampled when there are more
UNRELATED_WORDS = 7
COVERED_QUANTILE = 10  # percentile of the covered probes' similarity
UNRELATED_QUANTILE = 95  # percentile of the unrelated probes' similarity
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[^\W\d_]{4,}")


def _sampled_chunks(space, count: int) -> list[tuple[int, str, list[str]]]:
    """``count`` chunks spread evenly over the partition: (id, text, heading path)."""
    with connection.cursor() as cursor:
        cursor.execute(f"select count(*) from {space.partition_name}")
        total = cursor.fetchone()[0]
        if not total:
            return []
        step = max(1, total // count)
        cursor.execute(
            f"select id, text, heading_path from (select id, text, heading_path, row_number() over (order by id) as n"
            f" from {space.partition_name}) numbered where (n - 1) %% %s = 0 limit %s",
            [step, count],
        )
        return [(row[0], row[1], heading_path_value(row[2])) for row in cursor.fetchall()]


def prose_sentence(text: str) -> str:
    """The first sentence of ``text`` that reads as prose (6 to 30 words, not code or a list item)."""
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block or block.startswith(("```", "|", "- ", "* ")) or "\n" in block:
            continue
        for sentence in _SENTENCE.split(block):
            if 6 <= len(sentence.split()) <= 30:
                return sentence.strip()
    return ""


def _vocabulary_words(embedder) -> list[str]:
    """Whole words of the model's tokenizer vocabulary (no sub-word pieces, no markers)."""
    tokenizer = getattr(embedder, "tokenizer", None)
    vocabulary = tokenizer.get_vocab() if tokenizer is not None and hasattr(tokenizer, "get_vocab") else {}
    return sorted(word for word in vocabulary if _WORD.fullmatch(word) and word.islower())


def unrelated_probes(words: Sequence[str], seed: int, count: int = UNRELATED_PROBES) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(list(words), UNRELATED_WORDS)) for _ in range(count)] if len(words) > 50 else []


def _best_other(space, vector, own_id: int | None) -> float:
    for chunk_id, similarity in dense_ranking(space, vector, 2):
        if chunk_id != own_id:
            return similarity
    return 0.0


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if values else 0.0


def threshold(covered: list[float], unrelated: list[float]) -> float:
    """The similarity a question needs (see the module's docstring)."""
    high = _percentile(unrelated, UNRELATED_QUANTILE)
    low = _percentile(covered, COVERED_QUANTILE)
    return round((high + low) / 2, 4) if low > high else high


def calibrate(space, embedder, questions: Sequence[str] = ()) -> dict:
    """The gate's parameters for ``space`` (see the module's docstring); ``questions``: the team's
    golden questions. Reads only."""
    chunks = _sampled_chunks(space, SAMPLED_CHUNKS)
    if not chunks:
        return {}
    probes: list[tuple[str, int | None]] = []
    for chunk_id, text, path in chunks:
        if path and len(path[-1].split()) >= 2:
            probes.append((path[-1], chunk_id))
        sentence = prose_sentence(text)
        if sentence:
            probes.append((sentence, chunk_id))
    probes = list(dict(probes).items())  # one probe per text
    probes += [(question, None) for question in questions]
    words = _vocabulary_words(embedder) or sorted({w.lower() for _, text, _ in chunks for w in _WORD.findall(text)})
    # Seeded by the content, not by a database id: the same pages give the same gate wherever they are indexed.
    unrelated = unrelated_probes(
        words,
        seed=zlib.crc32("\n".join(text for _, text, _ in chunks).encode()),
        count=max(UNRELATED_PROBES, len(chunks)),
    )
    vectors = embedder.embed_queries([text for text, _ in probes] + unrelated)
    covered = [_best_other(space, vector, own) for (_, own), vector in zip(probes, vectors)]
    null = []
    agreements = 0
    for text, vector in zip(unrelated, vectors[len(probes) :]):
        dense = dense_ranking(space, vector, 1)
        null.append(dense[0][1] if dense else 0.0)
        lexical = lexical_ranking(space, text, 1)
        agreements += bool(dense and lexical and dense[0][0] == lexical[0][0])
    return {
        "version": VERSION,
        "model": space.model_name,
        "language": majority_language([text for _, text, _ in chunks]),
        "min_similarity": threshold(covered, null),
        "cross_language_min_similarity": _percentile(null, UNRELATED_QUANTILE),
        "agreement_chance": round(agreements / len(unrelated), 4) if unrelated else 1.0,
        "covered": {"probes": len(covered), "golden": len(questions), **_summary(covered)},
        "unrelated": {"probes": len(null), **_summary(null)},
    }


def _summary(values: list[float]) -> dict:
    return {f"p{q}": _percentile(values, q) for q in (5, 10, 50, 90, 95)}


@functools.lru_cache(maxsize=8)
def _unrelated_level(model_name: str) -> float:
    from ingestion.embedding import get_embedder

    embedder = get_embedder(model_name)
    texts = unrelated_probes(_vocabulary_words(embedder), seed=0)
    if len(texts) < 4:
        return 0.0
    vectors = np.asarray(embedder.embed_queries(texts), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    half = len(vectors) // 2
    similarities = (vectors[:half] @ vectors[half:].T).ravel().tolist()
    return _percentile(similarities, 99)


def uncalibrated(model_name: str) -> dict:
    """The gate of content not calibrated yet: the model's own level for unrelated texts (the 99th
    percentile of the similarity between random-word strings), for both thresholds."""
    level = _unrelated_level(model_name)
    return {
        "version": VERSION,
        "model": model_name,
        "language": "",
        "min_similarity": level,
        "cross_language_min_similarity": level,
        "agreement_chance": 1.0,
        "uncalibrated": True,
    }
