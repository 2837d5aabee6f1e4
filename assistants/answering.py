"""From a visitor's question to a streamed, cited answer.

question → stand-alone search query (a follow-up rewritten by the model, ``query_rewrite``) →
hybrid search in the assistant's space (more candidates, reranked, when the assistant has a
reranker; a hit from the visitor's current page moved up) → is there evidence to answer from
(``grounding.retrieval_evidence``)? If not, the honest "I don't know" and an offer of a person;
if so, numbered sources → the assistant's provider (or the offline extractive answerer) → tokens
streamed as they come → the citations the answer used → each sentence checked against what it
cites (``grounding.check_answer``) → the conversation stored, with ``unanswered`` set when the
content had no supported answer (the dashboard's content-gap signal, and the ``done`` event's
cue to offer a person). The chat views turn these events into Server-Sent Events.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings

from assistants import services
from assistants.grounding import Evidence, SourceVectors, check_answer, content_terms, retrieval_evidence
from assistants.models import Assistant, Conversation, Message
from assistants.query_rewrite import retrieval_query, rewrite_query  # noqa: F401 - retrieval_query: public here too
from assistants.rendering import render_answer
from ingestion.selectors import Hit, chunk_search
from ingestion.spaces import space_active

logger = logging.getLogger(__name__)

HISTORY_MESSAGES = 6
SOURCE_CHARS = 1800  # of each source in the prompt
NO_ANSWER = "I couldn't find anything about that in this site's content. Could you rephrase, or would you like to talk to a person?"
_CITATION = re.compile(r"\[(\d{1,2})\]")

SYSTEM_TEMPLATE = """{persona}

Answer the visitor's question using only the numbered sources below. Cite the sources you use
inline as [1], [2] right after the sentence they support. If the sources do not contain the
answer, say that you don't know and suggest contacting the team; never invent facts, links or
prices. Answer in the language of the question.

Sources:
{sources}"""


@dataclass
class Event:
    name: str  # meta, token, citations, error, done
    data: dict


@dataclass
class Retrieval:
    """What one search found, and how much it can be trusted."""

    hits: list[Hit]
    evidence: Evidence
    sources: SourceVectors | None  # the hits' embeddings, shared with the grounding check


def page_key(url: str) -> tuple[str, str]:
    """A page's identity for the page boost: host without ``www.``, path without a trailing slash;
    scheme, query and fragment ignored (the crawler drops tracking parameters, the widget does not)."""
    parts = urlsplit(url.strip())
    return (parts.hostname or "").removeprefix("www."), parts.path.rstrip("/")


def boost_page(hits: list[Hit], page_url: str, positions: int) -> list[Hit]:
    """``hits`` with those from the page the visitor is on moved up ``positions`` places.

    A visitor asking from a page most likely asks about it; a small move (not to the top) keeps a
    clearly better passage from elsewhere ahead. Pure reordering: nothing is added or dropped."""
    if not page_url or positions <= 0:
        return hits
    page = page_key(page_url)
    if not page[0]:
        return hits
    order = sorted(
        range(len(hits)), key=lambda i: i - positions - 0.5 if page_key(hits[i].url) == page else i
    )
    return [hits[i] for i in order]


def _reranked(assistant: Assistant, query: str, hits: list[Hit]) -> list[Hit]:
    """``hits`` in the order of the assistant's reranker; the fused order when it cannot load or
    fails (a misconfigured reranker must not cost the visitor the answer)."""
    from ingestion.reranking import get_reranker, rerank

    try:
        return rerank(hits, query, get_reranker(assistant.reranker_model))
    except Exception:
        logger.exception("reranker %r failed; keeping the hybrid order", assistant.reranker_model)
        return hits


def _search(assistant: Assistant, query: str, k: int, page_url: str) -> tuple[list[Hit], SourceVectors | None, object]:
    """The hits, a lazy holder of their embeddings, and the query's vector (None without a space)."""
    from ingestion.embedding import get_embedder

    space = space_active(assistant.pk)
    if space is None:
        return [], None, None
    embedder = get_embedder(space.model_name)
    boost = settings.PAGE_BOOST_POSITIONS if page_url else 0
    candidates = max(settings.RERANK_CANDIDATES, k) if assistant.reranker_model else k + boost
    vector = embedder.embed_queries([query])[0]
    hits = chunk_search(space=space, query=query, vector=vector, k=candidates)
    if assistant.reranker_model:
        hits = _reranked(assistant, query, hits)
    hits = boost_page(hits, page_url, boost)[:k]
    return hits, SourceVectors(embedder, hits, space), vector


def retrieve(assistant: Assistant, query: str, k: int | None = None, *, page_url: str = "") -> list[Hit]:
    """The ``k`` best chunks for ``query``: hybrid search; with the assistant's reranker,
    ``RERANK_CANDIDATES`` candidates reranked; hits from ``page_url`` moved up (:func:`boost_page`)."""
    return _search(assistant, query, k or settings.RETRIEVAL_TOP_K, page_url)[0]


def retrieve_with_evidence(assistant: Assistant, query: str, *, page_url: str = "") -> Retrieval:
    """:func:`retrieve`, and whether its hits are good enough to answer from."""
    hits, sources, vector = _search(assistant, query, settings.RETRIEVAL_TOP_K, page_url)
    if not hits:
        return Retrieval(hits, Evidence(query, 0.0, 0.0, weak=True), None)
    return Retrieval(hits, retrieval_evidence(query, sources, query_vector=vector), sources)


def format_sources(hits: list[Hit]) -> str:
    blocks = []
    for number, hit in enumerate(hits, start=1):
        where = " > ".join(hit.heading_path) or hit.title
        blocks.append(f"[{number}] {where} ({hit.link})\n{hit.text[:SOURCE_CHARS]}")
    return "\n\n".join(blocks)


def build_messages(assistant: Assistant, question: str, hits: list[Hit], history: list[Message]) -> list[dict]:
    system = SYSTEM_TEMPLATE.format(persona=assistant.system_prompt.strip(), sources=format_sources(hits) or "(none)")
    messages = [{"role": "system", "content": system}]
    for message in history[-HISTORY_MESSAGES:]:
        messages.append({"role": message.role, "content": message.text})
    messages.append({"role": "user", "content": question})
    return messages


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


def cited_hits(answer: str, hits: list[Hit]) -> list[dict]:
    """The sources the answer cites, in the numbering the answer uses."""
    numbers = sorted({int(n) for n in _CITATION.findall(answer) if 1 <= int(n) <= len(hits)})
    return [
        {
            "n": n,
            "title": hits[n - 1].title or hits[n - 1].url,
            "section": " > ".join(hits[n - 1].heading_path[1:]),
            "url": hits[n - 1].link,
            "chunk_id": hits[n - 1].chunk_id,
        }
        for n in numbers
    ]


async def _extractive_tokens(text: str) -> AsyncIterator[str]:
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield piece


def _grounding_record(retrieval: Retrieval, answer: str, error: str) -> tuple[dict, bool]:
    """``Message.grounding`` and ``Message.unanswered`` for a finished answer.

    Weak retrieval is unanswered. A failed call (an outage, not a gap in the content) is not checked
    and not counted as unanswered. Otherwise the answer's sentences are checked against what they
    cite, and an unsupported answer is unanswered."""
    if retrieval.evidence.weak:
        return {"supported": False, "score": 0.0, "sentences": [], "retrieval": retrieval.evidence.as_dict()}, True
    if error or not answer:
        return {"retrieval": retrieval.evidence.as_dict()}, False
    grounding = check_answer(answer, retrieval.sources).as_dict()
    grounding["retrieval"] = retrieval.evidence.as_dict()
    return grounding, not grounding["supported"]


async def answer_events(
    *, assistant: Assistant, conversation: Conversation, question: str, page_url: str | None = None
) -> AsyncIterator[Event]:
    """The events of one answer, stored as a conversation turn once it is complete.

    ``page_url``: the page the visitor asks from, for the page boost; by default the page the
    conversation started on. The ``done`` event carries ``unanswered``: true when the content held
    no supported answer, the cue to offer a person."""
    from assistants.providers import ProviderError, Usage, provider_from_settings

    started = time.perf_counter()
    history = await sync_to_async(lambda: list(conversation.messages.all()))()
    await sync_to_async(services.message_add)(conversation=conversation, role=Message.Role.USER, text=question)
    yield Event("meta", {"conversation_id": conversation.pk})

    query = await rewrite_query(assistant, question, history)
    timings = {"rewrite_ms": round((time.perf_counter() - started) * 1000, 1)} if history else {}
    page_url = conversation.page_url if page_url is None else page_url
    retrieval = await sync_to_async(retrieve_with_evidence)(assistant, query, page_url=page_url)
    hits = retrieval.hits
    timings["retrieve_ms"] = round((time.perf_counter() - started) * 1000, 1)
    provider = None if retrieval.evidence.weak else await sync_to_async(provider_from_settings)(assistant)
    parts: list[str] = []
    usage = None
    error = ""
    if provider is None:
        provider_name = "extractive"
        tokens = _extractive_tokens(NO_ANSWER if retrieval.evidence.weak else extractive_answer(question, hits))
    else:
        provider_name = provider.name
        tokens = provider.stream(build_messages(assistant, question, hits, history))
    try:
        async for item in tokens:
            if isinstance(item, Usage):
                usage = item
                continue
            if not parts:
                timings["first_token_ms"] = round((time.perf_counter() - started) * 1000, 1)
            parts.append(item)
            yield Event("token", {"text": item})
    except ProviderError as exc:
        error = exc.kind
        yield Event("error", {"kind": exc.kind, "message": exc.user_message, "offer_human": True, "partial": bool(parts)})
    finally:
        await tokens.aclose()  # a visitor who leaves cancels the upstream call
    answer = "".join(parts)
    citations = cited_hits(answer, hits)
    if answer:
        yield Event("citations", {"citations": citations, "html": render_answer(answer, citations, assistant.allowed_domains)})
    checked = time.perf_counter()
    grounding, unanswered = await sync_to_async(_grounding_record)(retrieval, answer, error)
    timings["grounding_ms"] = round((time.perf_counter() - checked) * 1000, 1)
    timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if usage is not None:
        timings.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    message = await sync_to_async(services.message_add)(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=answer,
        citations=citations,
        timings=timings,
        provider=provider_name,
        error=error,
        grounding=grounding,
        unanswered=unanswered,
        usage=usage.record(provider.config.model) if usage is not None else {},
    )
    yield Event("done", {"message_id": message.pk, "unanswered": unanswered})
