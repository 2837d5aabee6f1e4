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

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from assistants import services
from assistants.answering.extractive import extractive_answer, extractive_tokens, no_answer
from assistants.answering.grounding import check_answer
from assistants.answering.prompt import build_messages
from assistants.answering.query_rewrite import rewrite_query
from assistants.answering.rendering import render_answer
from assistants.answering.retrieval import Retrieval, retrieve_with_evidence
from assistants.models import Assistant, Conversation, Message
from chatsite.db import release_connection
from ingestion.search.hybrid import Hit

MAX_QUESTION_CHARS = 2000  # a longer question is cut to this length


_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass
class Event:
    name: str  # meta, token, citations, error, done
    data: dict

    def sse(self) -> bytes:
        """The event as one Server-Sent Event (the full page, the widget and the API stream these)."""
        return f"event: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n".encode()


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
    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    started = time.perf_counter()
    history = await sync_to_async(lambda: list(conversation.messages.all()))()
    await sync_to_async(services.message_add)(conversation=conversation, role=Message.Role.USER, text=question)
    yield Event("meta", {"conversation_id": conversation.pk})

    await sync_to_async(release_connection)()  # none is held while a model rewrites the question
    query = await rewrite_query(assistant, question, history)
    timings = {"rewrite_ms": round((time.perf_counter() - started) * 1000, 1)} if history else {}
    page_url = conversation.page_url if page_url is None else page_url
    retrieval = await sync_to_async(retrieve_with_evidence)(assistant, query, page_url=page_url)
    hits = retrieval.hits
    timings["retrieve_ms"] = round((time.perf_counter() - started) * 1000, 1)
    provider = None if retrieval.evidence.weak else await sync_to_async(provider_from_settings)(assistant)
    await sync_to_async(release_connection)()  # ... nor while it writes the answer (seconds)
    parts: list[str] = []
    usage = None
    error = ""
    if provider is None:
        provider_name = "extractive"
        tokens = extractive_tokens(
            no_answer(assistant.language) if retrieval.evidence.weak else extractive_answer(question, hits)
        )
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
        yield Event(
            "error", {"kind": exc.kind, "message": exc.user_message, "offer_human": True, "partial": bool(parts)}
        )
    finally:
        await tokens.aclose()  # a visitor who leaves cancels the upstream call
    answer = "".join(parts)
    citations = cited_hits(answer, hits)
    if answer:
        yield Event(
            "citations", {"citations": citations, "html": render_answer(answer, citations, assistant.allowed_domains)}
        )
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
