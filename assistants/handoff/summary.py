"""The handoff's summary by the assistant's language model (a worker runs it, ``handoff_summarize_task``);
the extractive summary (``selectors.extractive_summary``) is there from the start and stays when the
model is not configured or fails."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync

from assistants.handoff import selectors, services
from assistants.models import Handoff

logger = logging.getLogger(__name__)

SUMMARY_MAX_TOKENS = 200
SUMMARY_TIMEOUT = 20.0
INSTRUCTIONS = (
    "You brief a support team member who takes over a website chat from an AI assistant. In at most "
    "three short sentences, in English, say what the visitor wants, what they already tried or were "
    "told, and what the assistant could not answer. Plain text only; no greeting, no list."
)


def summary_messages(transcript: str) -> list[dict]:
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": transcript}]


async def _ask(provider, messages: list[dict]) -> str:
    from assistants.answering.providers import Usage

    parts: list[str] = []
    stream = provider.stream(messages)
    try:
        async for item in stream:
            if not isinstance(item, Usage):
                parts.append(item)
    finally:
        await stream.aclose()
    return " ".join("".join(parts).split())


def handoff_summarize(*, handoff_id: int) -> bool:
    """Replace the handoff's summary with the model's; True when it did."""
    from assistants.answering.providers import ProviderError, provider_from_settings

    handoff = Handoff.objects.select_related("conversation__assistant").filter(pk=handoff_id).first()
    if handoff is None:
        return False
    provider = provider_from_settings(
        handoff.conversation.assistant,
        timeout=SUMMARY_TIMEOUT,
        stall_timeout=SUMMARY_TIMEOUT,
        max_retries=1,
        max_tokens=SUMMARY_MAX_TOKENS,
        temperature=0.0,
    )
    if provider is None:
        return False
    transcript = selectors.transcript_for_model(conversation=handoff.conversation)
    try:
        text = async_to_sync(_ask)(provider, summary_messages(transcript))
    except ProviderError as exc:
        logger.info(
            "handoff %s: the model could not summarise (%s); the extractive summary stays", handoff_id, exc.kind
        )
        return False
    if not text:
        return False
    reason = Handoff.Reason(handoff.reason).label
    services.handoff_summary_set(handoff_id=handoff_id, summary=f"{reason}. {text}", by=provider.config.model)
    return True
