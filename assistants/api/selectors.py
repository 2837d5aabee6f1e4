"""Reads for the API: everything through the key's team, so another team's ids are simply not found."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q, QuerySet

from assistants.api.http import invalid, not_found
from assistants.models import Assistant, Conversation, Team
from ingestion.models import Source

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def assistants_for_team(*, team: Team) -> QuerySet[Assistant]:
    return Assistant.objects.filter(team=team).order_by("name", "id")


def assistant_get_for_team(*, team: Team, assistant_id: int) -> Assistant:
    assistant = assistants_for_team(team=team).filter(pk=assistant_id).first()
    if assistant is None:
        raise not_found("assistant")
    return assistant


def sources_for_assistant(*, assistant: Assistant) -> QuerySet[Source]:
    return assistant.sources.select_related("last_run").order_by("-created_at", "-id")


def source_get_for_team(*, team: Team, source_id: int) -> Source:
    source = Source.objects.select_related("last_run").filter(pk=source_id, assistant__team=team).first()
    if source is None:
        raise not_found("source")
    return source


def conversation_get_for_team(*, team: Team, conversation_id: int) -> Conversation:
    conversation = Conversation.objects.filter(pk=conversation_id, assistant__team=team).first()
    if conversation is None:
        raise not_found("conversation")
    return conversation


def encode_cursor(conversation: Conversation) -> str:
    """An opaque position after ``conversation`` in the newest-first order."""
    raw = json.dumps([conversation.updated_at.isoformat(), conversation.pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        updated_at, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(updated_at), int(pk)
    except (ValueError, TypeError, binascii.Error):
        raise invalid("The cursor is not one this API returned.", {"parameter": "cursor"}) from None


def page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise invalid(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.", {"parameter": "limit"})
    return int(raw)


def conversations_page(
    *, assistant: Assistant, cursor: str | None, limit: int
) -> tuple[list[Conversation], str | None]:
    """Conversations newest first, ``limit`` after ``cursor``, and the cursor of the next page (None at the end).

    Keyset pagination on (updated_at, id): a conversation updated while paging moves to the front
    and is not repeated later.
    """
    conversations = Conversation.objects.filter(assistant=assistant).order_by("-updated_at", "-id")
    if cursor:
        updated_at, pk = _decode_cursor(cursor)
        conversations = conversations.filter(Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, pk__lt=pk))
    page = list(conversations[: limit + 1])
    if len(page) <= limit:
        return page, None
    return page[:limit], encode_cursor(page[limit - 1])
