"""From a visitor's question to a streamed, cited answer.

question → its language (``chatsite.lib.language``, against the content's, measured when the
assistant's gate was calibrated) → stand-alone search query (a follow-up rewritten by the model,
``query_rewrite``; a question in another language than the content also translated into it, in
the same call, and both searched) → hybrid search in the assistant's space (more candidates,
reranked, when the assistant has a reranker; a hit from the visitor's current page moved up) → is
there evidence to answer from (``grounding.retrieval_evidence``, held to the assistant's own
calibrated gate)? If not, the honest "I don't know" (in the visitor's language) and an offer of a
person; if so, numbered sources → the assistant's provider (told the visitor's language), or the
offline extractive answerer → tokens streamed as they come (``paced``: at most ten events a second)
→ the citations the answer used (at most five pages, in evidence order, each with its section) →
each sentence checked against what it cites and the answer against the question
(``grounding.check_answer``) → the conversation stored, with ``unanswered`` set when the content had
no supported answer (the dashboard's content-gap signal, and the ``done`` event's cue to offer a
person). The chat views turn these events into Server-Sent Events.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from assistants import services
from assistants.answering.extractive import extractive_answer, extractive_tokens, language_name, no_answer
from assistants.answering.grounding import check_answer, cosine, gate_of
from assistants.answering.prompt import build_messages
from assistants.answering.query_rewrite import search_queries
from assistants.answering.rendering import render_answer
from assistants.answering.retrieval import Retrieval, retrieve_with_evidence
from assistants.models import Assistant, Conversation, Message
from chatsite.db import release_connection
from chatsite.lib.language import language_of
from chatsite.lib.urls import page_key
from ingestion.search.hybrid import Hit
from ingestion.spaces import space_active

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000  # a longer question is cut to this length
MAX_CITED_PAGES = 5


_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass
class Event:
    name: str  # meta, token, citations, error, done
    data: dict

    def sse(self) -> bytes:
        """The event as one Server-Sent Event (the full page, the widget and the API stream these)."""
        return f"event: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n".encode()


#: What a visitor reads when the database fails in the middle of an answer (restarting, or every
#: connection of the process's pool busy past DATABASE_POOL_TIMEOUT).
DATABASE_FAILURE_MESSAGE = "The assistant is temporarily unavailable. Please try again in a moment."


async def ended_cleanly(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream of Server-Sent Events that ends with an ``error`` event, not a broken connection, when
    the database fails after the response started (a 503 is no longer possible then)."""
    try:
        async for chunk in events:
            yield chunk
    except DatabaseError:
        logger.exception("the database failed during an answer")
        yield Event("error", {"kind": "unavailable", "message": DATABASE_FAILURE_MESSAGE, "offer_human": False}).sse()


async def paced(pieces: AsyncIterator, interval: float, clock=time.monotonic) -> AsyncIterator:
    """The answer's text pieces as they come, joined so that at most one goes out per ``interval``
    seconds: the first at once, then each that comes ``interval`` after the last one sent, with those
    held since. The rest is sent when the answer ends, or fails (before its error). Anything else
    (the provider's ``Usage``) passes through as it is.

    A provider writes 20–100 pieces a second and the offline answerer all its words at once, while a
    reader sees no difference between ten updates a second and fifty; each event costs the web process
    a trip through Django's streaming response and uvicorn. A piece held when the model pauses waits
    for the next one (or the end of the answer)."""
    held: list[str] = []
    sent_at: float | None = None
    try:
        async for piece in pieces:
            if not isinstance(piece, str):
                yield piece
                continue
            held.append(piece)
            now = clock()
            if sent_at is None or now - sent_at >= interval:
                yield "".join(held)
                held.clear()
                sent_at = now
    except Exception:
        if held:
            yield "".join(held)
        raise
    if held:
        yield "".join(held)


def section_of(hit: Hit) -> str:
    """The section a hit is in, below the page title: "Setting up the cache > Memcached"."""
    path = list(hit.heading_path)
    if path and hit.title and path[0].casefold() == hit.title.casefold():
        path = path[1:]
    elif path and not hit.title:
        path = path[1:]
    return " > ".join(path)


def cited_hits(answer: str, hits: list[Hit]) -> list[dict]:
    """The sources the answer cites, in the numbering the answer uses (which is evidence order):
    those of the first ``MAX_CITED_PAGES`` distinct pages, each with its section."""
    numbers = sorted({int(n) for n in _CITATION.findall(answer) if 1 <= int(n) <= len(hits)})
    pages: list[tuple[str, str]] = []
    kept = []
    for n in numbers:
        page = page_key(hits[n - 1].url)
        if page not in pages:
            if len(pages) >= MAX_CITED_PAGES:
                continue
            pages.append(page)
        kept.append(n)
    return [
        {
            "n": n,
            "title": hits[n - 1].title or hits[n - 1].url,
            "section": section_of(hits[n - 1]),
            "url": hits[n - 1].link,
            "chunk_id": hits[n - 1].chunk_id,
        }
        for n in kept
    ]


def _grounding_record(retrieval: Retrieval, answer: str, error: str) -> tuple[dict, bool]:
    """``Message.grounding`` and ``Message.unanswered`` for a finished answer.

    Weak retrieval is unanswered. A failed call (an outage, not a gap in the content) is not checked
    and not counted as unanswered. Otherwise the answer's sentences are checked against what they
    cite and the answer against the question (its relevance must reach the level of unrelated text
    in this content), and an unsupported answer is unanswered."""
    if retrieval.evidence.weak:
        return {"supported": False, "score": 0.0, "sentences": [], "retrieval": retrieval.evidence.as_dict()}, True
    if error or not answer:
        return {"retrieval": retrieval.evidence.as_dict()}, False
    gate = retrieval.calibration or {}
    grounding = check_answer(
        answer,
        retrieval.sources,
        question_vector=retrieval.vector,
        relevance_threshold=float(gate.get("cross_language_min_similarity", 0.0)),
    ).as_dict()
    grounding["retrieval"] = retrieval.evidence.as_dict()
    return grounding, not grounding["supported"]


def _offline_answer(question: str, retrieval: Retrieval) -> str:
    """The extractive answer for a retrieval that passed the gate.

    See also lists the pages whose passage reaches the level of unrelated text in this content, except
    for a question in another language than the content: its similarities to the right passages sink
    toward that level with a one-language model, so they tell nothing about a passage (the gate took
    the question already); its passages are shown in retrieval's order, as the notice says."""
    evidence = retrieval.evidence
    sources = retrieval.sources
    vectors = sources.get()
    similarities = [cosine(retrieval.vector, vector) for vector in vectors]
    floor = float((retrieval.calibration or {}).get("cross_language_min_similarity", 0.0))
    gate = float((retrieval.calibration or {}).get("min_similarity", 0.0))
    relevant = {n for n, similarity in enumerate(similarities, start=1) if similarity >= floor}
    return extractive_answer(
        question,
        retrieval.hits,
        query_vector=retrieval.vector,
        embedder=sources.embedder,
        unsure=evidence.similarity < gate,
        language=evidence.language,
        content_language=evidence.content_language,
        relevant=None if evidence.cross_language else relevant,
    )


def _languages(assistant: Assistant, space=None) -> tuple[str, str]:
    """The content's language (from the gate's calibration of ``space``, the assistant's active space) and
    the language a question is expected in: the content's, else the assistant's own setting, else English."""
    content = gate_of(space.calibration, space.model_name).get("language", "") if space is not None else ""
    return content, content or (assistant.language or "en").split("-")[0].lower()


def _turn_start(assistant: Assistant, conversation: Conversation, question: str, history: list[Message] | None):
    """The first of the turn's two trips to the database thread (each trip costs on a busy CPU): the
    history (unless the caller knows it), the active space, and the visitor's question stored."""
    if history is None:
        history = list(conversation.messages.all())
    space = space_active(assistant.pk)
    services.message_add(conversation=conversation, role=Message.Role.USER, text=question)
    release_connection()  # none is held while a model rewrites the question
    return history, space


def _retrieve(assistant: Assistant, query: str, **options) -> Retrieval:
    retrieval = retrieve_with_evidence(assistant, query, **options)
    release_connection()  # ... nor while it writes the answer (seconds)
    return retrieval


def _turn_end(
    *,
    conversation: Conversation,
    retrieval: Retrieval,
    answer: str,
    error: str,
    timings: dict,
    started: float,
    usage,
    provider,
    citations: list[dict],
) -> tuple[Message, bool]:
    """The grounding check and the answer stored: the turn's last trip to the database thread."""
    checked = time.perf_counter()
    grounding, unanswered = _grounding_record(retrieval, answer, error)
    timings["grounding_ms"] = round((time.perf_counter() - checked) * 1000, 1)
    timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if usage is not None:
        timings.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    message = services.message_add(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=answer,
        citations=citations,
        timings=timings,
        provider=provider.name if provider is not None else "extractive",
        error=error,
        grounding=grounding,
        unanswered=unanswered,
        usage=usage.record(provider.config.model) if usage is not None else {},
    )
    return message, unanswered


async def answer_events(
    *,
    assistant: Assistant,
    conversation: Conversation,
    question: str,
    page_url: str | None = None,
    history: list[Message] | None = None,
) -> AsyncIterator[Event]:
    """The events of one answer, stored as a conversation turn once it is complete.

    ``page_url``: the page the visitor asks from, for the page boost; by default the page the
    conversation started on. ``history``: the conversation's messages before this question when the
    caller knows them (``[]`` for a conversation it just created), else they are read. The ``done``
    event carries ``unanswered``: true when the content held no supported answer, the cue to offer a
    person."""
    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    started = time.perf_counter()
    history, space = await sync_to_async(_turn_start)(assistant, conversation, question, history)
    content_language, expected = _languages(assistant, space)
    yield Event("meta", {"conversation_id": conversation.pk})

    language = language_of(question, expected)
    translate_to = language_name(content_language, "en") if content_language and language != content_language else ""
    query, translated = await search_queries(assistant, question, history, translate_to=translate_to)
    timings = {"rewrite_ms": round((time.perf_counter() - started) * 1000, 1)} if history or translated else {}
    page_url = conversation.page_url if page_url is None else page_url
    retrieval = await sync_to_async(_retrieve)(
        assistant, query, page_url=page_url, language=language, translated=translated, space=space
    )
    hits = retrieval.hits
    timings["retrieve_ms"] = round((time.perf_counter() - started) * 1000, 1)
    provider = None if retrieval.evidence.weak else provider_from_settings(assistant)  # settings only: no trip
    parts: list[str] = []
    usage = None
    error = ""
    if provider is None:
        if retrieval.evidence.weak:
            text = no_answer(language)
        else:
            text = await sync_to_async(_offline_answer)(question, retrieval)
        tokens = extractive_tokens(text)
    else:
        reply_in = language_name(language, "en") if language else ""
        tokens = provider.stream(build_messages(assistant, question, hits, history, language=reply_in))
    pieces = paced(tokens, settings.ANSWER_EVENT_INTERVAL_MS / 1000)
    try:
        async for item in pieces:
            if isinstance(item, Usage):
                usage = item
                continue
            if not parts:
                timings["first_token_ms"] = round((time.perf_counter() - started) * 1000, 1)
            parts.append(item)
            yield Event("token", {"text": item})
    except ProviderError as exc:
        error = exc.kind
        yield Event(
            "error", {"kind": exc.kind, "message": exc.user_message, "offer_human": True, "partial": bool(parts)}
        )
    finally:
        await pieces.aclose()
        await tokens.aclose()  # a visitor who leaves cancels the upstream call
    answer = "".join(parts)
    citations = cited_hits(answer, hits)
    if answer:
        yield Event(
            "citations", {"citations": citations, "html": render_answer(answer, citations, assistant.allowed_domains)}
        )
    message, unanswered = await sync_to_async(_turn_end)(
        conversation=conversation,
        retrieval=retrieval,
        answer=answer,
        error=error,
        timings=timings,
        started=started,
        usage=usage,
        provider=provider,
        citations=citations,
    )
    yield Event("done", {"message_id": message.pk, "unanswered": unanswered})
