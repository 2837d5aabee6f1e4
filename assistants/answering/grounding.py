"""Is there something to answer from, and does the answer address the question with what it cites?

Two checks, both with the embedding model that indexed the assistant's content (so nothing else is
loaded, and the scores live on the same scale as retrieval):

* **Retrieval evidence**, before answering: the best cosine similarity between the query and the
  retrieved chunks, against the assistant's own gate (``ingestion.search.calibration``: learned
  from its content and golden set when the content changed, stored on its embedding space; a space
  not calibrated yet uses the model's level for unrelated text). Retrieval is *weak* when there
  are no hits, or when the similarity is below the gate's threshold and BM25 and the vectors do not
  agree on the top chunk (their agreement vouches for a question only where the calibration found
  it rare by chance). A question in another language than the content is held to a lower bar, the
  level of unrelated text: an English-only model embeds it far from everything. Weak retrieval gets
  the honest "I don't know" and an offer of a person instead of a guess from unrelated passages.
  Term coverage (the share of the question's words found in the hits) is reported, not used: it
  says nothing of a question in another language.
* **Answer grounding**, after answering: each sentence of the answer is compared with the chunks it
  cites (cosine similarity of the sentence's and the chunk's embeddings, or 1.0 when the sentence
  quotes the chunk word for word, as the offline answerer does); a sentence whose best cited chunk
  scores below ``GROUNDING_MIN_SCORE`` is unsupported. A sentence without a citation is
  only checked when it reads as a claim (at least ``UNCITED_CLAIM_TERMS`` content words and not a
  lead-in ending in ":" or a question), against every source the model was given. Code blocks are
  not checked. A quotation is always supported, so support alone cannot catch an answer that
  quotes off-topic text: each checked sentence is also scored for **relevance** to the question
  (cosine similarity of the two), and the answer *addresses* the question when its most relevant
  sentence reaches the gate's threshold for the question. The answer is supported when at least
  one sentence was checked, none failed, and it addresses the question; its score is the weakest
  checked sentence's support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from chatsite.db import release_connection

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
AGREEMENT_MAX_CHANCE = 0.05  # the legs' agreement vouches for a question where chance gives it this rarely


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
            # The answer's sentences (and any chunk no longer stored) wait their turn at the process's
            # model next: no database connection is held meanwhile (held, a burst emptied the pool).
            release_connection()
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
    """How well the retrieved chunks match the query, and the gate it was held to."""

    query: str
    similarity: float  # best cosine similarity of the query to a retrieved chunk
    coverage: float  # share of the query's content words present in the retrieved chunks (reported only)
    weak: bool
    threshold: float = 0.0  # the similarity the gate asked for
    agreement: bool = False  # BM25 and the vectors both rank the top chunk first
    language: str = ""  # the question's
    content_language: str = ""
    calibrated: bool = False  # the gate was learned from this content (else the model's default)
    translated: str = ""  # the query also searched in the content's language (a model's translation)

    @property
    def cross_language(self) -> bool:
        return bool(self.language and self.content_language and self.language != self.content_language)

    def as_dict(self) -> dict:
        return {
            "query": self.query,
            "similarity": round(self.similarity, 4),
            "coverage": round(self.coverage, 4),
            "weak": self.weak,
            "threshold": round(self.threshold, 4),
            "agreement": self.agreement,
            "language": self.language,
            "content_language": self.content_language,
            "calibrated": self.calibrated,
            **({"translated": self.translated} if self.translated else {}),
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


def gate_of(calibration: dict | None, model_name: str) -> dict:
    """The gate to hold a question to: the space's calibration, or the model's default."""
    from ingestion.search.calibration import uncalibrated

    return calibration if calibration and "min_similarity" in calibration else uncalibrated(model_name)


def legs_agree(hit) -> bool:
    """BM25 and the vectors both rank ``hit`` first."""
    return hit.ranks.get("lexical") == 1 and hit.ranks.get("dense") == 1


def retrieval_evidence(
    query: str,
    sources: SourceVectors,
    *,
    query_vector=None,
    calibration: dict | None = None,
    model_name: str = "",
    language: str = "",
    similarity: float | None = None,
    depth: int | None = None,
) -> Evidence:
    """Whether the hits are good enough to answer from (see the module's docstring).
    ``query_vector``: the query's embedding when retrieval already computed it; ``calibration``: the
    space's gate; ``language``: the question's; ``similarity``: a better similarity found by
    another search of the same question (its translation); ``depth``: the gate reads the first this
    many hits alone (those its calibration measured: the rest only widen the pages an answer cites)."""
    gate = gate_of(calibration, model_name or getattr(sources.embedder, "name", ""))
    content_language = gate.get("language", "")
    if not sources.hits:
        return Evidence(query, 0.0, 0.0, weak=True, language=language, content_language=content_language)
    if query_vector is None:
        query_vector = np.asarray(sources.embedder.embed_queries([query]))[0]
    hits = sources.hits[:depth] if depth else sources.hits
    best = max(cosine(query_vector, vector) for vector in sources.get()[: len(hits)])
    if similarity is not None:
        best = max(best, similarity)
    evidence = Evidence(
        query,
        best,
        term_coverage(query, hits),
        weak=False,
        agreement=legs_agree(sources.hits[0]),
        language=language,
        content_language=content_language,
        calibrated=not gate.get("uncalibrated", False),
    )
    key = "cross_language_min_similarity" if evidence.cross_language else "min_similarity"
    evidence.threshold = float(gate.get(key, 0.0))
    vouched = evidence.agreement and float(gate.get("agreement_chance", 1.0)) <= AGREEMENT_MAX_CHANCE
    evidence.weak = evidence.similarity < evidence.threshold and not vouched
    return evidence


@dataclass
class Sentence:
    text: str
    cites: list[int]  # 1-based source numbers, as the answer wrote them
    score: float | None = None  # None: not checked
    supported: bool | None = None
    relevance: float | None = None  # cosine similarity to the question (None: not checked)

    def as_dict(self) -> dict:
        score = None if self.score is None else round(self.score, 4)
        relevance = None if self.relevance is None else round(self.relevance, 4)
        return {
            "text": self.text,
            "cites": self.cites,
            "score": score,
            "supported": self.supported,
            "relevance": relevance,
        }


@dataclass
class Grounding:
    supported: bool
    score: float
    sentences: list[Sentence] = field(default_factory=list)
    relevance: float | None = None  # the most relevant checked sentence's (None: no question given)
    addresses: bool | None = None  # relevance reached the question's gate

    def as_dict(self) -> dict:
        return {
            "supported": self.supported,
            "score": round(self.score, 4),
            "relevance": None if self.relevance is None else round(self.relevance, 4),
            "addresses": self.addresses,
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
    the source or its heading path, which a "See also" line names), else the cosine similarity of their embeddings. A quoted fragment ("Default:
    None") embeds far from its whole chunk although the chunk says exactly that."""
    quoted = _normalised(_CITATION.sub("", sentence.text))
    hit = sources.hits[number - 1]
    if quoted and quoted in _normalised(" ".join([*hit.heading_path, hit.text])):
        return 1.0
    return cosine(vector, source_vectors[number - 1])


def check_answer(
    answer: str, sources: SourceVectors, *, question_vector=None, relevance_threshold: float = 0.0
) -> Grounding:
    """Score each sentence of ``answer`` against the chunks it cites and, with ``question_vector``,
    against the question (see the module's docstring)."""
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
            if question_vector is not None:
                sentence.relevance = cosine(np.asarray(question_vector), vector)
    scores = [s.score for s in checked]
    relevances = [s.relevance for s in checked if s.relevance is not None]
    relevance = max(relevances) if relevances else None
    addresses = None if question_vector is None else relevance is not None and relevance >= relevance_threshold
    return Grounding(
        supported=bool(checked) and all(s.supported for s in checked) and addresses is not False,
        score=min(scores) if scores else 0.0,
        sentences=sentences,
        relevance=relevance,
        addresses=addresses,
    )
