"""The gap re-check: each of a gap's questions asked again through the real answering pipeline (the
one the chat uses), in a conversation of its own that is removed afterwards so it counts nowhere."""

from __future__ import annotations

import secrets

from asgiref.sync import async_to_sync

from assistants.analytics.metrics import RECHECK_VISITOR_PREFIX
from assistants.models import ContentGap, Conversation


async def _ask(assistant, conversation, question: str) -> dict:
    from assistants.answering.pipeline import answer_events

    result = {"answered": False, "title": "", "url": ""}
    failed = False
    async for event in answer_events(assistant=assistant, conversation=conversation, question=question, page_url=""):
        if event.name == "citations" and event.data.get("citations"):
            first = event.data["citations"][0]
            result.update(title=first.get("title", ""), url=first.get("url", ""))
        elif event.name == "error":
            failed = True
        elif event.name == "done":
            result["answered"] = not failed and not event.data.get("unanswered", True)
    return result


def gap_ask_again(*, gap_id: int) -> dict[int, dict]:
    """{check id: {"answered", "title", "url"}} for each of the gap's questions, asked again now."""
    gap = ContentGap.objects.select_related("assistant").filter(pk=gap_id).first()
    if gap is None:
        return {}
    results = {}
    for check in gap.checks.order_by("pk"):
        conversation = Conversation.objects.create(
            assistant=gap.assistant, visitor_token=f"{RECHECK_VISITOR_PREFIX}{secrets.token_hex(8)}"
        )
        try:
            results[check.pk] = async_to_sync(_ask)(gap.assistant, conversation, check.text)
        finally:
            conversation.delete()
    return results
