"""Follow-up questions rewritten into stand-alone search queries by the assistant's model.

"And for teams?" or "does it work with sessions?" only searches well with the conversation it
continues. With a model configured, one short call (``QUERY_REWRITE_TIMEOUT`` seconds, no retries,
a few dozen tokens) asks it for the stand-alone query; on any failure, or without a model, the
simple rule of :func:`retrieval_query` is used, so a slow or broken model never blocks an answer.
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


def retrieval_query(question: str, history: list) -> str:
    """Without a model: a short follow-up (four words or fewer) is searched together with the
    visitor's previous question, a longer one alone."""
    previous = [m.text for m in history if m.role == "user"]
    if previous and len(_WORD.findall(question)) <= 4:
        return f"{previous[-1]} {question}"
    return question


def rewrite_messages(question: str, history: list) -> list[dict]:
    """The rewriter's prompt: the recent conversation as a transcript, then the last message."""
    lines = [
        f"{'Visitor' if m.role == 'user' else 'Assistant'}: {' '.join(m.text.split())[:TURN_CHARS]}"
        for m in history[-HISTORY_TURNS:]
    ]
    transcript = "\n".join(lines)
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast message: {question}\n\nStand-alone query:"},
    ]


def clean_query(text: str) -> str:
    """The model's reply as a query: its first non-empty line, without quotes or a label."""
    line = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^(stand-alone )?query:\s*", "", line, flags=re.IGNORECASE)
    return line.strip("\"'` ")[:MAX_QUERY_CHARS]


async def rewrite_query(assistant, question: str, history: list) -> str:
    """The stand-alone search query for ``question``: the model's rewrite of a follow-up, or the
    fallback rule. A first question is searched as asked."""
    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    if not any(m.role == "user" for m in history):
        return question
    timeout = settings.QUERY_REWRITE_TIMEOUT
    provider = provider_from_settings(
        assistant, timeout=timeout, stall_timeout=timeout, max_retries=0, max_tokens=REWRITE_MAX_TOKENS, temperature=0.0
    )
    if provider is None:
        return retrieval_query(question, history)
    parts: list[str] = []
    stream = provider.stream(rewrite_messages(question, history))
    try:
        async for item in stream:
            if not isinstance(item, Usage):
                parts.append(item)
    except Exception as error:
        kind = error.kind if isinstance(error, ProviderError) else type(error).__name__
        logger.info("query rewrite failed (%s: %s); using the fallback", kind, error)
        return retrieval_query(question, history)
    finally:
        await stream.aclose()
    return clean_query("".join(parts)) or retrieval_query(question, history)
