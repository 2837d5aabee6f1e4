"""Is there something to answer from, and is the answer backed by what it cites?

Two checks, both with the embedding model that indexed the assistant's content (so nothing else is
loaded, and the scores live on the same scale as retrieval):

* **Retrieval evidence**, before answering: the best cosine similarity between the query and the
  retrieved chunks, and the share of the query's content words found in those chunks. Retrieval is
  *weak* when there are no hits, or when both are low (``RETRIEVAL_MIN_SIMILARITY`` and
  ``RETRIEVAL_MIN_TERM_COVERAGE``): an off-topic question then gets the honest "I don't know" and
  an offer of a person instead of a model's guess from unrelated passages. Both must be low because
  each alone misfires: a paraphrase shares few words but embeds close, and a question that reuses a
  site's words ("capital", "class") in another sense embeds far.
* **Answer grounding**, after answering: each sentence of the answer is compared with the chunks it
  cites (cosine similarity of the sentence's and the chunk's embeddings, or 1.0 when the sentence
  quotes the chunk word for word, as the offline answerer does); a sentence whose best cited chunk
  scores below ``GROUNDING_MIN_SCORE`` is unsupported. A sentence without a citation is
  only checked when it reads as a claim (at least ``UNCITED_CLAIM_TERMS`` content words and not a
  lead-in ending in ":" or a question), against every source the model was given. Code blocks are
  not checked. The answer is supported when at least one sentence was checked and none failed; its
  score is the weakest checked sentence's, so ``score >= GROUNDING_MIN_SCORE`` iff supported.

The thresholds were measured on the Django REST framework documentation site (see the settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

_WORD = re.compile(r"[\w']+")
_STOPWORDS = set(
    "a an and are as at be but by can do does for from how i if in into is it its me my of on or so that the "
    "their then there these this to was what when where which who why will with you your".split()
)
_CITATION = re.compile(r"\[(\d{1,2})\]")
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
# A sentence runs to a full stop, "!" or "?" followed by a space (with the citations right after it
# kept in it: "… settings. [1]"), or to the end of a line.
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?](?:\s*\[\d{1,2}\])+|[.!?](?=\s)|$)", re.M)
UNCITED_CLAIM_TERMS = 6


def content_terms(text: str) -> set[str]:
    """The words of ``text`` that carry meaning: lower case, no stop words, no single letters."""
    return {word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; the engines' vectors are normalised, API vectors may not be."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


class SourceVectors:
    """The embeddings of the retrieved chunks, read once per answer and shared by both checks.

    With the chunks' ``space``, their stored vectors (those retrieval searched: the chunk text under
    its heading path); the embedder only embeds a chunk that is no longer stored (replaced by a
    re-index since the search), or every chunk when no space is given."""

    def __init__(self, embedder, hits: list, space=None):
        self.embedder = embedder
        self.hits = hits
        self.space = space
        self._vectors: np.ndarray | None = None

    def get(self) -> np.ndarray:
        if self._vectors is None:
            from ingestion.search.hybrid import chunk_vectors

            stored = (
                chunk_vectors(space=self.space, chunk_ids=[hit.chunk_id for hit in self.hits]) if self.space else {}
            )
            vectors = [stored.get(hit.chunk_id) for hit in self.hits]
            missing = [n for n, vector in enumerate(vectors) if vector is None]
            if missing:
                embedded = self.embedder.embed_documents([self.hits[n].text for n in missing])
                for n, vector in zip(missing, embedded):
                    vectors[n] = np.asarray(vector, dtype=np.float32)
            self._vectors = np.asarray(vectors, dtype=np.float32).reshape(len(self.hits), -1)
        return self._vectors


@dataclass
class Evidence:
    """How well the retrieved chunks match the query."""

    query: str
    similarity: float  # best cosine similarity of the query to a retrieved chunk
    coverage: float  # share of the query's content words present in the retrieved chunks
    weak: bool

    def as_dict(self) -> dict:
        return {
            "query": self.query,
            "similarity": round(self.similarity, 4),
            "coverage": round(self.coverage, 4),
            "weak": self.weak,
        }


def term_coverage(query: str, hits: list) -> float:
    """The share of the query's content words found in any of the hits (1.0 for a query without any)."""
    terms = content_terms(query)
    if not terms:
        return 1.0
    found: set[str] = set()
    for hit in hits:
        found |= content_terms(hit.text) & terms
    return len(found) / len(terms)


def retrieval_evidence(query: str, sources: SourceVectors, *, query_vector=None) -> Evidence:
    """Whether the hits are good enough to answer from (see the module's docstring).
    ``query_vector``: the query's embedding when retrieval already computed it."""
    if not sources.hits:
        return Evidence(query, 0.0, 0.0, weak=True)
    if query_vector is None:
        query_vector = np.asarray(sources.embedder.embed_queries([query]))[0]
    similarity = max(cosine(query_vector, vector) for vector in sources.get())
    coverage = term_coverage(query, sources.hits)
    weak = similarity < settings.RETRIEVAL_MIN_SIMILARITY and coverage < settings.RETRIEVAL_MIN_TERM_COVERAGE
    return Evidence(query, similarity, coverage, weak)


@dataclass
class Sentence:
    text: str
    cites: list[int]  # 1-based source numbers, as the answer wrote them
    score: float | None = None  # None: not checked
    supported: bool | None = None

    def as_dict(self) -> dict:
        score = None if self.score is None else round(self.score, 4)
        return {"text": self.text, "cites": self.cites, "score": score, "supported": self.supported}


@dataclass
class Grounding:
    supported: bool
    score: float
    sentences: list[Sentence] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "supported": self.supported,
            "score": round(self.score, 4),
            "sentences": [sentence.as_dict() for sentence in self.sentences],
        }


def split_sentences(answer: str, sources: int) -> list[Sentence]:
    """The answer's sentences (code blocks left out) with the valid source numbers each cites."""
    sentences = []
    for match in _SENTENCE.finditer(_FENCE.sub("\n", answer)):
        text = match.group().strip().lstrip("-*#> ").strip()
        if not _WORD.search(text):
            continue
        cites = sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= sources})
        sentences.append(Sentence(text, cites))
    return sentences


def _is_claim(sentence: Sentence) -> bool:
    """Whether an uncited sentence states something worth checking (see the module's docstring)."""
    text = _CITATION.sub("", sentence.text).rstrip()
    return not text.endswith((":", "?")) and len(content_terms(text)) >= UNCITED_CLAIM_TERMS


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _support(sentence: Sentence, vector: np.ndarray, number: int, sources: SourceVectors, source_vectors) -> float:
    """How well source ``number`` backs ``sentence``: 1.0 for a quotation (its words, in order, are in
    the source), else the cosine similarity of their embeddings. A quoted fragment ("Default:
    None") embeds far from its whole chunk although the chunk says exactly that."""
    quoted = _normalised(_CITATION.sub("", sentence.text))
    if quoted and quoted in _normalised(sources.hits[number - 1].text):
        return 1.0
    return cosine(vector, source_vectors[number - 1])


def check_answer(answer: str, sources: SourceVectors) -> Grounding:
    """Score each sentence of ``answer`` against the chunks it cites (see the module's docstring)."""
    sentences = split_sentences(answer, len(sources.hits))
    checked = [s for s in sentences if s.cites or _is_claim(s)]
    if checked:
        source_vectors = sources.get()
        sentence_vectors = np.asarray(
            sources.embedder.embed_documents([_CITATION.sub("", s.text).strip() for s in checked])
        )
        everything = list(range(1, len(sources.hits) + 1))
        for sentence, vector in zip(checked, sentence_vectors):
            cited = sentence.cites or everything
            sentence.score = max(_support(sentence, vector, n, sources, source_vectors) for n in cited)
            sentence.supported = sentence.score >= settings.GROUNDING_MIN_SCORE
    scores = [s.score for s in checked]
    return Grounding(
        supported=bool(checked) and all(s.supported for s in checked),
        score=min(scores) if scores else 0.0,
        sentences=sentences,
    )
