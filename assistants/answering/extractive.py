"""The offline answerer, used when no language model is configured: what every team without a model
key shows its visitors, so it answers rather than quotes.

Query-focused extraction over the retrieved passages (several pages, at most two chunks each):

1. Each passage is cut into whole sentences and blocks (code, lists, tables; ``ingestion.chunking``
   keeps them whole and fenced). A piece that starts mid-sentence is left out.
2. Each sentence is scored for the question: the cosine similarity of its embedding to the
   question's (the model that indexed the content), plus the share of the question's words it
   holds, weighted by how rare each is among the passages (so "Django" on a Django site counts for
   little, "memcached" for much), plus a little for the passage's own retrieval rank.
3. Sentences are chosen best first with maximal marginal relevance (a sentence too close to one
   already chosen adds nothing), from any passage, within a length budget; only those within
   reach of the best are kept.
4. A chosen sentence that introduces a block ("... as in this example:") brings it along: code
   verbatim in a fenced block, a list as a list.
5. The answer is the chosen sentences, best first, each with its citation; adjacent sentences of
   one passage stay one paragraph. The other relevant pages follow as "See also", with their
   section names: at most ``ANSWER_MAX_PAGES`` pages in all, in evidence order.

Weak evidence (the gate, ``grounding.retrieval_evidence``) is said in one honest sentence
(:data:`NO_ANSWER`) instead of quoting off-topic passages. A question in another language than the
content is told so in its own language (:func:`other_language_notice`), then shown the passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from assistants.answering.grounding import content_terms, cosine
from chatsite.lib.language import NAMES
from ingestion.chunking import blocks
from ingestion.search.hybrid import Hit

# The honest "I don't know", said once, in the visitor's language when it is one we speak: the chat then
# offers a person (static/js/chat.js).
NO_ANSWER = "I couldn't find anything about that in this site's content. Could you put it another way?"
NOT_SURE = "I'm not sure the site's content answers that; this is the closest it says:"
_NO_ANSWER = {
    "en": NO_ANSWER,
    "fr": "Je n’ai rien trouvé à ce sujet dans le contenu de ce site. Pouvez-vous le formuler autrement ?",
    "de": "Dazu habe ich in den Inhalten dieser Website nichts gefunden. Können Sie es anders formulieren?",
    "es": "No encontré nada sobre eso en el contenido de este sitio. ¿Puedes formularlo de otra manera?",
    "it": "Non ho trovato nulla al riguardo nei contenuti di questo sito. Puoi riformulare la domanda?",
    "pt": "Não encontrei nada sobre isso no conteúdo deste site. Pode reformular a pergunta?",
    "nl": "Ik heb daarover niets gevonden in de inhoud van deze site. Kunt u de vraag anders stellen?",
    "zh": "我在本网站的内容中没有找到相关信息。您可以换个说法吗？",
}
_OTHER_LANGUAGE = {
    "en": "This site's content is in {language}; these are the passages closest to your question:",
    "it": "I contenuti di questo sito sono in {language}; ecco i passaggi più vicini alla tua domanda:",
    "fr": "Le contenu de ce site est en {language} ; voici les passages les plus proches de votre question :",
    "de": "Die Inhalte dieser Website sind auf {language}; dies sind die Stellen, die Ihrer Frage am nächsten kommen:",
    "es": "El contenido de este sitio está en {language}; estos son los pasajes más cercanos a tu pregunta:",
    "pt": "O conteúdo deste site está em {language}; estes são os trechos mais próximos da sua pergunta:",
    "nl": "De inhoud van deze site is in het {language}; dit zijn de passages die het dichtst bij uw vraag komen:",
}
_LANGUAGE_NAMES = {
    "en": {
        "en": "English",
        "it": "inglese",
        "fr": "anglais",
        "de": "Englisch",
        "es": "inglés",
        "pt": "inglês",
        "nl": "Engels",
    },
    "it": {
        "en": "Italian",
        "it": "italiano",
        "fr": "italien",
        "de": "Italienisch",
        "es": "italiano",
        "pt": "italiano",
        "nl": "Italiaans",
    },
    "fr": {
        "en": "French",
        "it": "francese",
        "fr": "français",
        "de": "Französisch",
        "es": "francés",
        "pt": "francês",
        "nl": "Frans",
    },
    "de": {
        "en": "German",
        "it": "tedesco",
        "fr": "allemand",
        "de": "Deutsch",
        "es": "alemán",
        "pt": "alemão",
        "nl": "Duits",
    },
    "es": {
        "en": "Spanish",
        "it": "spagnolo",
        "fr": "espagnol",
        "de": "Spanisch",
        "es": "español",
        "pt": "espanhol",
        "nl": "Spaans",
    },
    "pt": {
        "en": "Portuguese",
        "it": "portoghese",
        "fr": "portugais",
        "de": "Portugiesisch",
        "es": "portugués",
        "pt": "português",
        "nl": "Portugees",
    },
    "nl": {
        "en": "Dutch",
        "it": "olandese",
        "fr": "néerlandais",
        "de": "Niederländisch",
        "es": "neerlandés",
        "pt": "neerlandês",
        "nl": "Nederlands",
    },
}

MAX_SENTENCES = 4
MAX_PROSE_CHARS = 900
MAX_LIST_ITEMS = 8
MAX_CODE_LINES = 30
KEEP_WITHIN = 0.6  # a sentence is kept when it scores at least this share of the best one
REDUNDANCY = 0.3  # the weight of similarity to what is already chosen (maximal marginal relevance)
DUPLICATE = 0.9  # a sentence this close to one already chosen says it again: left out
LEXICAL_WEIGHT = 0.5
RANK_WEIGHT = 0.05

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(\[])")
_LIST_LINE = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s")
_WORD = re.compile(r"[\w']+")


def no_answer(language: str = "") -> str:
    """The honest "I don't know", in the visitor's language when it is one we speak."""
    return _NO_ANSWER.get(language, NO_ANSWER)


def language_name(code: str, in_language: str) -> str:
    """The name of language ``code`` in language ``in_language`` (in English when we lack it)."""
    return _LANGUAGE_NAMES.get(code, {}).get(in_language) or NAMES.get(code, code)


def other_language_notice(language: str, content_language: str) -> str:
    """ "This site's content is in English; ..." in the visitor's language (English otherwise)."""
    template = _OTHER_LANGUAGE.get(language, _OTHER_LANGUAGE["en"])
    speak = language if language in _OTHER_LANGUAGE else "en"
    return template.format(language=language_name(content_language, speak))


@dataclass
class Piece:
    """A sentence or a block of one passage."""

    number: int  # the passage's citation number (1-based)
    position: int  # order within the passage
    kind: str  # sentence, code, list, table
    text: str
    block: int  # which block of the passage it belongs to


def _kind(block: str) -> str:
    if block.startswith("```"):
        return "code"
    if block.startswith("|"):
        return "table"
    if _LIST_LINE.match(block):
        return "list"
    return "paragraph"


def pieces_of(text: str, number: int) -> list[Piece]:
    """``text`` (one passage) as sentences and blocks, in order."""
    out: list[Piece] = []
    for index, block in enumerate(blocks(text)):
        kind = _kind(block)
        if kind != "paragraph":
            out.append(Piece(number, len(out), kind, block, index))
            continue
        for line in block.split("\n"):
            for sentence in _SENTENCE_SPLIT.split(line.strip()):
                if sentence.strip():
                    out.append(Piece(number, len(out), "sentence", sentence.strip(), index))
    return out


def _readable(piece: Piece) -> bool:
    """A whole sentence worth offering: starts like one, has a few words, is not a bare label."""
    text = piece.text
    first = text[0]
    return len(_WORD.findall(text)) >= 4 and not (first.isalpha() and first.islower())


def _idf(pieces: list[Piece]) -> dict[str, float]:
    """How rare each word is among the passages' sentences (smoothed inverse document frequency)."""
    documents = [content_terms(piece.text) for piece in pieces]
    frequency: dict[str, int] = {}
    for terms in documents:
        for term in terms:
            frequency[term] = frequency.get(term, 0) + 1
    total = len(documents)
    return {term: math.log(1 + total / count) for term, count in frequency.items()}


def _lexical(question_terms: set[str], text: str, idf: dict[str, float]) -> float:
    if not question_terms:
        return 0.0
    weight = {term: idf.get(term, math.log(2)) for term in question_terms}
    found = content_terms(text) & question_terms
    return sum(weight[t] for t in found) / sum(weight.values())


def _attached(piece: Piece, pieces: list[Piece]) -> Piece | None:
    """The block a sentence introduces ("... as in this example:"): the next piece of its passage
    when the sentence ends its paragraph with a colon."""
    following = [p for p in pieces if p.number == piece.number and p.position == piece.position + 1]
    if not following or following[0].kind == "sentence" or not piece.text.rstrip().endswith(":"):
        return None
    return following[0]


def _block_markdown(piece: Piece) -> str:
    if piece.kind == "list":
        lines = [line for line in piece.text.split("\n") if line.strip()]
        top = [n for n, line in enumerate(lines) if not line.startswith(" ")]
        if len(top) > MAX_LIST_ITEMS:
            lines = lines[: top[MAX_LIST_ITEMS]] + ["- …"]
        return "\n".join(lines)
    if piece.kind == "code":
        lines = piece.text.split("\n")
        if len(lines) > MAX_CODE_LINES + 2:
            lines = [*lines[: MAX_CODE_LINES + 1], "…", lines[-1]]
        return "\n".join(lines)
    return piece.text


def _where(hit: Hit) -> str:
    """ "Title › Section › Subsection" for a See also line: the passage's heading path (which starts
    with the page title), or its title."""
    path = [part for part in hit.heading_path if part]
    return " › ".join(path) if path else (hit.title or hit.url)


def _score(
    question: str, hits: list[Hit], pieces: list[Piece], query_vector, embedder
) -> tuple[list[float], np.ndarray]:
    """Each readable sentence's score for the question, and its embedding."""
    idf = _idf(pieces)
    terms = content_terms(question)
    vectors = np.asarray(embedder.embed_documents([piece.text for piece in pieces]), dtype=np.float32)
    query = np.asarray(query_vector, dtype=np.float32)
    scores = []
    for piece, vector in zip(pieces, vectors):
        rank_prior = RANK_WEIGHT / piece.number
        scores.append(cosine(query, vector) + LEXICAL_WEIGHT * _lexical(terms, piece.text, idf) + rank_prior)
    return scores, vectors


def _choose(pieces: list[Piece], scores: list[float], vectors: np.ndarray) -> list[int]:
    """Indexes of the sentences to say, best first (maximal marginal relevance within a budget)."""
    order = sorted(range(len(pieces)), key=lambda n: -scores[n])
    if not order:
        return []
    best = scores[order[0]]
    chosen: list[int] = []
    length = 0
    candidates = [n for n in order if scores[n] >= KEEP_WITHIN * best]
    while candidates and len(chosen) < MAX_SENTENCES:

        def marginal(n: int) -> float:
            overlap = max((cosine(vectors[n], vectors[m]) for m in chosen), default=0.0)
            return scores[n] - REDUNDANCY * overlap

        pick = max(candidates, key=marginal)
        candidates.remove(pick)
        if any(cosine(vectors[pick], vectors[m]) >= DUPLICATE for m in chosen):
            continue
        if chosen and marginal(pick) < KEEP_WITHIN * best:
            break
        if chosen and length + len(pieces[pick].text) > MAX_PROSE_CHARS:
            continue
        chosen.append(pick)
        length += len(pieces[pick].text)
    return chosen


def extractive_answer(
    question: str,
    hits: list[Hit],
    *,
    query_vector=None,
    embedder=None,
    weak: bool = False,
    unsure: bool = False,
    language: str = "",
    content_language: str = "",
    relevant: set[int] | None = None,
) -> str:
    """The offline answer (see the module's docstring). ``weak``: the gate found no evidence;
    ``unsure``: the best passage is only loosely related; ``language`` / ``content_language``: the
    question's and the content's, when they differ the visitor is told so in their language;
    ``relevant``: the passages (numbers) close enough to the question for See also (all by default)."""
    cross_language = bool(language and content_language and language != content_language)
    if weak or not hits:
        return no_answer(language)
    if embedder is None or query_vector is None:
        from ingestion.embedding import get_embedder

        embedder = embedder or get_embedder("")
        query_vector = embedder.embed_queries([question])[0] if query_vector is None else query_vector
    all_pieces = [piece for number, hit in enumerate(hits, start=1) for piece in pieces_of(hit.text, number)]
    # A lead-in ("... on this form:") whose block is not in its passage would promise what is not shown.
    sentences = [
        piece
        for piece in all_pieces
        if piece.kind == "sentence"
        and _readable(piece)
        and not (piece.text.rstrip().endswith(":") and _attached(piece, all_pieces) is None)
    ]
    if not sentences:
        return no_answer(language)
    scores, vectors = _score(question, hits, sentences, query_vector, embedder)
    chosen = [sentences[n] for n in _choose(sentences, scores, vectors)]

    paragraphs: list[str] = []
    previous: Piece | None = None
    for piece in chosen:
        block = _attached(piece, all_pieces)
        joined = (
            previous is not None
            and previous.number == piece.number
            and previous.block == piece.block
            and previous.position + 1 == piece.position
            and paragraphs
        )
        if joined:
            paragraphs[-1] = f"{paragraphs[-1].removesuffix(f' [{piece.number}]')} {piece.text} [{piece.number}]"
        else:
            paragraphs.append(f"{piece.text} [{piece.number}]")
        if block is not None:
            paragraphs.append(_block_markdown(block))
        previous = piece

    cited_pages = {hits[piece.number - 1].url for piece in chosen}
    see_also: list[str] = []
    pages = set(cited_pages)
    for number, hit in enumerate(hits, start=1):
        if len(pages) >= settings.ANSWER_MAX_PAGES:
            break
        if hit.url in pages or (relevant is not None and number not in relevant):
            continue
        pages.add(hit.url)
        see_also.append(f"- {_where(hit)} [{number}]")

    lead = []
    if cross_language:
        lead.append(other_language_notice(language, content_language))
    elif unsure:
        lead.append(NOT_SURE)
    parts = [*lead, *paragraphs]
    if see_also:
        parts.append("See also:\n\n" + "\n".join(see_also))
    return "\n\n".join(parts)


async def extractive_tokens(text: str) -> AsyncIterator[str]:
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield piece
