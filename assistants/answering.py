"""From a visitor's question to a streamed, cited answer.

retrieve (hybrid search in the assistant's space) → numbered sources → the configured provider
(or the offline extractive answerer) → tokens streamed as they come → the citations the answer
used → the conversation stored. The chat views turn these events into Server-Sent Events.
"""
from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from assistants import services
from assistants.models import Assistant, Conversation, Message
from assistants.rendering import render_answer
from ingestion.selectors import Hit, chunk_search
from ingestion.spaces import space_active

HISTORY_MESSAGES = 6
SOURCE_CHARS = 1800  # of each source in the prompt
NO_ANSWER = "I couldn't find anything about that in this site's content. Could you rephrase, or would you like to talk to a person?"
_CITATION = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[\w']+")
_STOPWORDS = set(
    "a an and are as at be but by can do does for from how i if in into is it its me my of on or so that the "
    "their then there these this to was what when where which who why will with you your".split()
)

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


def retrieval_query(question: str, history: list[Message]) -> str:
    """A follow-up like "and for teams?" searches better with the question it follows."""
    previous = [m.text for m in history if m.role == Message.Role.USER]
    if previous and len(_WORD.findall(question)) <= 4:
        return f"{previous[-1]} {question}"
    return question


def retrieve(assistant: Assistant, query: str, k: int | None = None) -> list[Hit]:
    from ingestion.embedding import get_embedder

    space = space_active(assistant.pk)
    if space is None:
        return []
    vector = get_embedder(space.model_name).embed_queries([query])[0]
    return chunk_search(space=space, query=query, vector=vector, k=k or settings.RETRIEVAL_TOP_K)


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


def _terms(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1}


def _best_excerpt(text: str, terms: set[str], max_chars: int = 420) -> str:
    """The window of consecutive sentences of ``text`` that shares the most terms with the question."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?:])\s+|\n+", text) if s.strip()]
    if not sentences:
        return ""
    best, best_score = 0, -1.0
    for start in range(len(sentences)):
        window = " ".join(sentences[start : start + 3])
        score = len(_terms(window) & terms) - start * 0.01
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
    terms = _terms(question)
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


async def answer_events(
    *, assistant: Assistant, conversation: Conversation, question: str
) -> AsyncIterator[Event]:
    """The events of one answer, stored as a conversation turn once it is complete."""
    from assistants.providers import ProviderError, Usage, provider_from_settings

    started = time.perf_counter()
    history = await sync_to_async(lambda: list(conversation.messages.all()))()
    await sync_to_async(services.message_add)(conversation=conversation, role=Message.Role.USER, text=question)
    yield Event("meta", {"conversation_id": conversation.pk})

    hits = await sync_to_async(retrieve)(assistant, retrieval_query(question, history))
    timings = {"retrieve_ms": round((time.perf_counter() - started) * 1000, 1)}
    provider = provider_from_settings() if hits else None
    parts: list[str] = []
    usage = None
    error = ""
    if provider is None:
        provider_name = "extractive"
        tokens = _extractive_tokens(extractive_answer(question, hits))
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
    )
    yield Event("done", {"message_id": message.pk})
