"""The offline answerer, used when no language model is configured: the passages that share the
most words with the question, each with its citation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from assistants.answering.grounding import content_terms
from ingestion.search.hybrid import Hit

# The honest "I don't know", said once: the chat then offers a person (static/js/chat.js), in the
# assistant's language when its team chose one.
NO_ANSWERS = {
    "en": "I couldn't find anything about that in this site's content. Could you put it another way?",
    "fr": "Je n’ai rien trouvé à ce sujet dans le contenu de ce site. Pouvez-vous le formuler autrement ?",
    "de": "Dazu habe ich in den Inhalten dieser Website nichts gefunden. Können Sie es anders formulieren?",
    "es": "No encontré nada sobre eso en el contenido de este sitio. ¿Puedes formularlo de otra manera?",
    "zh": "我在本网站的内容中没有找到相关信息。您可以换个说法吗？",
}
NO_ANSWER = NO_ANSWERS["en"]


def no_answer(language: str = "") -> str:
    return NO_ANSWERS.get(language or "en", NO_ANSWER)


def _best_excerpt(text: str, terms: set[str], max_chars: int = 420) -> str:
    """The window of consecutive sentences of ``text`` that shares the most terms with the question."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?:])\s+|\n+", text) if s.strip()]
    if not sentences:
        return ""
    best, best_score = 0, -1.0
    for start in range(len(sentences)):
        window = " ".join(sentences[start : start + 3])
        score = len(content_terms(window) & terms) - start * 0.01
        if score > best_score:
            best, best_score = start, score
    excerpt = ""
    for sentence in sentences[best:]:
        if excerpt and len(excerpt) + len(sentence) > max_chars:
            break
        excerpt = f"{excerpt} {sentence}".strip()
    return excerpt[: max_chars + 200]


def extractive_answer(question: str, hits: list[Hit], max_sources: int = 3) -> str:
    """The offline answer: the most relevant passages, each with its citation."""
    if not hits:
        return NO_ANSWER
    terms = content_terms(question)
    parts = ["Here is what I found in the site's content:"]
    for number, hit in enumerate(hits[:max_sources], start=1):
        excerpt = _best_excerpt(hit.text, terms)
        if excerpt:
            parts.append(f"{excerpt} [{number}]")
    return "\n\n".join(parts)


async def extractive_tokens(text: str) -> AsyncIterator[str]:
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield piece
