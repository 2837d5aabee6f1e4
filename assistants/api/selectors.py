"""Reads for the API: everything through the key's team, so another team's ids are simply not found."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from assistants.api.http import invalid, not_found
from assistants.models import Assistant, ContentGap, Conversation, Feedback, Handoff, Lead, Message, Team, Topic
from ingestion.models import Document, Source


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


def document_get_for_team(*, team: Team, document_id: int) -> Document:
    document = Document.objects.filter(pk=document_id, source__assistant__team=team).first()
    if document is None:
        raise not_found("document")
    return document


def id_cursor(raw: str | None) -> int | None:
    """The position of an id-ordered page: the last id of the previous page."""
    if raw is None:
        return None
    # ASCII digits only ("¹" is a digit to str.isdigit, not to int), and within PostgreSQL's bigint.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise invalid("The cursor is not one this API returned.", {"parameter": "cursor"})
    return int(raw)


def newest_first_page(queryset: QuerySet, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """Rows newest (highest id) first, ``limit`` after ``cursor``, and the next page's cursor (None at the end)."""
    after = id_cursor(cursor)
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    page = list(queryset.order_by("-id")[: limit + 1])
    if len(page) <= limit:
        return page, None
    return page[:limit], str(page[limit - 1].pk)


def documents_for_assistant(*, assistant: Assistant, status: str | None = None, q: str = "") -> QuerySet[Document]:
    """The assistant's documents (pages and files), of one of Document.Status when ``status`` is given,
    matching the words of ``q`` like the dashboard's search."""
    from ingestion.selectors import documents_listing

    return documents_listing(assistant_id=assistant.pk, query=q or "", status=status or "")


def feedback_for_assistant(*, assistant: Assistant, kind: str | None = None) -> QuerySet[Feedback]:
    """The ratings and contact requests of the assistant's conversations, of one of Feedback.Kind when given."""
    feedback = Feedback.objects.filter(conversation__assistant=assistant).select_related("message")
    return feedback if kind is None else feedback.filter(kind=kind)


def handoffs_for_team(*, team: Team, status: str | None = None) -> QuerySet[Handoff]:
    """The team's handoffs to a person (every assistant's), of one status when given."""
    handoffs = Handoff.objects.filter(conversation__assistant__team=team).select_related("conversation", "assigned_to")
    if status == "resolved":
        return handoffs.filter(resolved_at__isnull=False)
    if status in ("pending", "open"):
        return handoffs.filter(resolved_at__isnull=True, assigned_to__isnull=status == "pending")
    return handoffs


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


def conversations_page(
    *,
    assistant: Assistant,
    cursor: str | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    unanswered: bool | None = None,
    rating: int | None = None,
) -> tuple[list[Conversation], str | None]:
    """Conversations newest first, ``limit`` after ``cursor``, and the cursor of the next page (None at the end).

    Keyset pagination on (updated_at, id): a conversation updated while paging moves to the front
    and is not repeated later. Filters: last activity in [``since``, ``until``); ``unanswered``
    True, only those with a question the content could not answer (False, only those without);
    ``rating`` 1 or -1, only those with an answer rated so.
    """
    conversations = Conversation.objects.filter(assistant=assistant).order_by("-updated_at", "-id")
    if since is not None:
        conversations = conversations.filter(updated_at__gte=since)
    if until is not None:
        conversations = conversations.filter(updated_at__lt=until)
    if unanswered is not None:
        gaps = Message.objects.filter(conversation=OuterRef("pk"), unanswered=True)
        conversations = conversations.filter(Exists(gaps) if unanswered else ~Exists(gaps))
    if rating is not None:
        conversations = conversations.filter(
            Exists(Feedback.objects.filter(conversation=OuterRef("pk"), rating=rating))
        )
    if cursor:
        updated_at, pk = _decode_cursor(cursor)
        conversations = conversations.filter(Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, pk__lt=pk))
    page = list(conversations[: limit + 1])
    if len(page) <= limit:
        return page, None
    return page[:limit], encode_cursor(page[limit - 1])


def conversation_export_rows(
    *, assistant: Assistant, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict]:
    """One row per message of the assistant's conversations, oldest conversation first.

    ``since`` and ``until`` bound the message's ``created_at`` (inclusive, exclusive). Read in
    batches, so an export of any size holds only a batch in memory.
    """
    messages = Message.objects.filter(conversation__assistant=assistant)
    if since is not None:
        messages = messages.filter(created_at__gte=since)
    if until is not None:
        messages = messages.filter(created_at__lt=until)
    messages = messages.select_related("conversation").order_by("conversation_id", "created_at", "id")
    for message in messages.iterator(chunk_size=500):
        yield {
            "conversation_id": message.conversation_id,
            "created_at": message.created_at.isoformat(),
            "role": message.role,
            "text": message.text,
            "citations": message.citations,
            "page_url": message.conversation.page_url,
        }


def leads_for_team(
    *, team: Team, status=None, assistant_id=None, min_score=None, since=None, until=None
) -> QuerySet[Lead]:
    """The team's leads with the API's filters (the page orders them newest first)."""
    leads = Lead.objects.filter(team=team)
    if status:
        leads = leads.filter(status=status)
    if assistant_id is not None:
        leads = leads.filter(assistant_id=assistant_id)
    if min_score is not None:
        leads = leads.filter(score__gte=min_score)
    if since is not None:
        leads = leads.filter(created_at__gte=since)
    if until is not None:
        leads = leads.filter(created_at__lt=until)
    return leads


def lead_get_for_team(*, team: Team, lead_id: int) -> Lead:
    lead = Lead.objects.filter(pk=lead_id, team=team).first()
    if lead is None:
        raise not_found("lead")
    return lead


# Analytics (the figures themselves come from assistants.analytics.selectors)

_MAX_BIGINT = 2**63 - 1


def _encode_position(position: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode_position(cursor: str, kinds: tuple[type, ...]) -> list:
    """A cursor made by :func:`_encode_position` whose items have the types ``kinds`` (ints within bigint)."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        position = None
    valid = (
        isinstance(position, list)
        and len(position) == len(kinds)
        and all(
            type(item) is kind and (kind is not int or 0 <= item <= _MAX_BIGINT) for item, kind in zip(position, kinds)
        )
    )
    if not valid:
        raise invalid("The cursor is not one this API returned.", {"parameter": "cursor"})
    return position


def ranked_page(queryset: QuerySet, *, field: str, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """Rows by ``field`` descending, then id descending (keyset: ``limit`` after ``cursor``), and the
    next page's cursor (None at the end). ``field`` holds non-negative integers."""
    if cursor:
        value, pk = _decode_position(cursor, (int, int))
        queryset = queryset.filter(Q(**{f"{field}__lt": value}) | Q(**{field: value, "pk__lt": pk}))
    page = list(queryset.order_by(f"-{field}", "-id")[: limit + 1])
    if len(page) <= limit:
        return page, None
    last = page[limit - 1]
    return page[:limit], _encode_position([getattr(last, field), last.pk])


def cited_page(rows: list[dict], *, cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Cited pages most cited first, then by address (the order source usage gives), ``limit`` after ``cursor``."""
    rows = [row | {key: int(row[key] or 0) for key in ("cited", "up", "down")} for row in rows]  # sums: Decimal
    ordered = sorted(rows, key=lambda row: (-row["cited"], row["url"]))
    if cursor:
        cited, url = _decode_position(cursor, (int, str))
        ordered = [row for row in ordered if (-row["cited"], row["url"]) > (-cited, url)]
    if len(ordered) <= limit:
        return ordered, None
    last = ordered[limit - 1]
    return ordered[:limit], _encode_position([last["cited"], last["url"]])


def lead_pages_page(rows: list[dict], *, cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Lead quality's pages, most leads first, then by address, ``limit`` after ``cursor``."""
    ordered = sorted(rows, key=lambda row: (-row["leads"], row["url"]))
    if cursor:
        leads, url = _decode_position(cursor, (int, str))
        ordered = [row for row in ordered if (-row["leads"], row["url"]) > (-leads, url)]
    if len(ordered) <= limit:
        return ordered, None
    last = ordered[limit - 1]
    return ordered[:limit], _encode_position([last["leads"], last["url"]])


def team_topics(*, team):
    """The team's assistants' latest finished topic builds and all their topics."""
    from assistants.analytics import selectors as analytics

    builds = analytics.latest_builds(assistant_ids=assistant_ids_for_team(team=team))
    return builds, Topic.objects.filter(build__in=[b.pk for b in builds]).defer("message_ids", "centroid")


def team_gaps(*, team, status: str | None = None) -> QuerySet:
    gaps = ContentGap.objects.filter(assistant__team=team).prefetch_related("checks")
    return gaps.filter(status=status) if status else gaps


def assistant_ids_for_team(*, team) -> list[int]:
    """The ids of all the team's assistants (the whole-team analytics)."""
    return list(Assistant.objects.filter(team=team).order_by("pk").values_list("pk", flat=True))


def topics_for_assistant(*, assistant: Assistant):
    """The assistant's latest finished topic build (None when there is none) and its topics."""
    from assistants.analytics import selectors as analytics

    builds = analytics.latest_builds(assistant_ids=[assistant.pk])
    if not builds:
        return None, assistant.topic_builds.none()
    return builds[0], builds[0].topics.defer("message_ids", "centroid")


def gaps_for_assistant(*, assistant: Assistant, status: str | None = None) -> QuerySet:
    gaps = assistant.content_gaps.prefetch_related("checks")
    return gaps.filter(status=status) if status else gaps
