"""Follow-up questions rewritten into stand-alone search queries by the assistant's model.

"And for teams?" or "does it work with sessions?" only searches well with the conversation it
continues. With a model configured, one short call (``QUERY_REWRITE_TIMEOUT`` seconds, no retries,
a few dozen tokens) asks it for the stand-alone query; on any failure, or without a model, the
simple rule of :func:`retrieval_query` is used, so a slow or broken model never blocks an answer.

A question in another language than the content (``chatsite.lib.language``) is also searched in the
content's language: the same one call asks the model for the stand-alone query translated
(:func:`search_queries`), and both are searched. Without a model it is searched as asked.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[\w']+")
HISTORY_TURNS = 4  # the last messages shown to the rewriter
TURN_CHARS = 600  # of each of them
MAX_QUERY_CHARS = 300
REWRITE_MAX_TOKENS = 64

REWRITE_PROMPT = """Rewrite the visitor's last message as one short, stand-alone search query for the site's \
content, using the conversation only to resolve what it refers to. Keep the visitor's language. \
Reply with the query alone: no quotes, no explanation."""

TRANSLATE_PROMPT = """Rewrite the visitor's last message as one short, stand-alone search query for the site's \
content, using the conversation only to resolve what it refers to. The site's content is in {language}: \
write the query in {language}, keeping names, code and identifiers as they are. \
Reply with the query alone: no quotes, no explanation."""


def retrieval_query(question: str, history: list) -> str:
    """Without a model: a short follow-up (four words or fewer) is searched together with the
    visitor's previous question, a longer one alone."""
    previous = [m.text for m in history if m.role == "user"]
    if previous and len(_WORD.findall(question)) <= 4:
        return f"{previous[-1]} {question}"
    return question


def rewrite_messages(question: str, history: list, target_language: str = "") -> list[dict]:
    """The rewriter's prompt: the recent conversation as a transcript, then the last message;
    ``target_language`` (a name, "Italian"): the query translated into it."""
    lines = [
        f"{'Visitor' if m.role == 'user' else 'Assistant'}: {' '.join(m.text.split())[:TURN_CHARS]}"
        for m in history[-HISTORY_TURNS:]
    ]
    transcript = "\n".join(lines)
    prompt = TRANSLATE_PROMPT.format(language=target_language) if target_language else REWRITE_PROMPT
    return [
        {"role": "system", "content": prompt},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast message: {question}\n\nStand-alone query:"},
    ]


def clean_query(text: str) -> str:
    """The model's reply as a query: its first non-empty line, without quotes or a label."""
    line = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^(stand-alone )?query:\s*", "", line, flags=re.IGNORECASE)
    return line.strip("\"'` ")[:MAX_QUERY_CHARS]


async def _ask_model(assistant, messages: list[dict]) -> str | None:
    """The model's query for ``messages`` (one short call), or None when it fails or there is none."""
    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    timeout = settings.QUERY_REWRITE_TIMEOUT
    provider = provider_from_settings(
        assistant, timeout=timeout, stall_timeout=timeout, max_retries=0, max_tokens=REWRITE_MAX_TOKENS, temperature=0.0
    )
    if provider is None:
        return None
    parts: list[str] = []
    stream = provider.stream(messages)
    try:
        async for item in stream:
            if not isinstance(item, Usage):
                parts.append(item)
    except Exception as error:
        kind = error.kind if isinstance(error, ProviderError) else type(error).__name__
        logger.info("query rewrite failed (%s: %s); using the fallback", kind, error)
        return None
    finally:
        await stream.aclose()
    return clean_query("".join(parts)) or None


async def rewrite_query(assistant, question: str, history: list) -> str:
    """The stand-alone search query for ``question``: the model's rewrite of a follow-up, or the
    fallback rule. A first question is searched as asked."""
    if not any(m.role == "user" for m in history):
        return question
    return await _ask_model(assistant, rewrite_messages(question, history)) or retrieval_query(question, history)


async def search_queries(assistant, question: str, history: list, *, translate_to: str = "") -> tuple[str, str]:
    """The queries to search: the stand-alone query in the visitor's language, and with
    ``translate_to`` (the content's language, by name, when the question is in another one) the
    model's stand-alone query in it ("" without a model or when the call fails). One model call
    at most, within ``QUERY_REWRITE_TIMEOUT``."""
    if not translate_to:
        return await rewrite_query(assistant, question, history), ""
    query = retrieval_query(question, history) if any(m.role == "user" for m in history) else question
    translated = await _ask_model(assistant, rewrite_messages(question, history, translate_to))
    return query, translated or ""
