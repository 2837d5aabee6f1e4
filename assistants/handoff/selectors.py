"""Reads for the handoff: settings, the inbox and its cards, summaries, and what a live stream sends
after a cursor (``live``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q

from assistants.models import (
    Assistant,
    Conversation,
    Feedback,
    Handoff,
    HandoffEvent,
    HandoffSettings,
    HandoffState,
    Message,
    Team,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ACTIVE = (HandoffState.PENDING, HandoffState.OPEN)
SUMMARY_QUESTIONS = 5  # the visitor's last questions in an extractive summary
SUMMARY_CHARS = 1200
BATCH = 200  # rows a stream reads at once; a longer backlog follows on the next read


def handoff_settings(*, assistant: Assistant) -> HandoffSettings:
    """The assistant's handoff settings (the defaults, unsaved, when the team never changed them); read
    with the assistant when it was fetched with ``select_related("handoff_settings")``."""
    relation = Assistant.handoff_settings.related
    if relation.is_cached(assistant):
        found = relation.get_cached_value(assistant)
    else:
        found = HandoffSettings.objects.filter(assistant=assistant).first()
    return found if found is not None else HandoffSettings(assistant=assistant)


def handoff_current(*, conversation: Conversation) -> Handoff | None:
    """The conversation's latest handoff (the one a pending or open conversation is in)."""
    return conversation.handoffs.select_related("assigned_to").order_by("-requested_at", "-id").first()


def unanswered_twice(*, conversation: Conversation) -> bool:
    """Whether the assistant's last two answers both found no supported answer, since the last handoff."""
    answers = conversation.messages.filter(role=Message.Role.ASSISTANT)
    last = conversation.handoffs.order_by("-requested_at").values_list("requested_at", flat=True).first()
    if last is not None:
        answers = answers.filter(created_at__gt=last)
    flags = list(answers.order_by("-created_at", "-id").values_list("unanswered", flat=True)[:2])
    return flags == [True, True]


def person_name(user: User | None) -> str:
    """How a team member is named to visitors and colleagues: their first name, else their username."""
    if user is None:
        return ""
    return " ".join((user.first_name or user.get_full_name() or user.username).split())[:60]


def agent_label(user: User | None, team: Team) -> str:
    """ "Dana from Acme"."""
    name = person_name(user)
    return f"{name} from {' '.join(team.name.split())}" if name else ""


def _one_line(text: str, most: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def extractive_summary(*, conversation: Conversation, reason: str, trigger: str = "") -> str:
    """What the person taking over needs first, from the conversation itself: the visitor's last
    questions, those the assistant could not answer, and why it was handed over."""
    messages = list(conversation.messages.filter(role__in=[Message.Role.USER, Message.Role.ASSISTANT]))
    questions, unanswered = [], []
    for position, message in enumerate(messages):
        if message.role != Message.Role.USER:
            continue
        questions.append(message.text)
        answer = messages[position + 1] if position + 1 < len(messages) else None
        if answer is not None and answer.role == Message.Role.ASSISTANT and (answer.unanswered or answer.error):
            unanswered.append(message.text)
    lines = []
    if not questions:
        lines.append(f"No question yet. Handed over: {Handoff.Reason(reason).label.lower()}.")
    if questions:
        lines.append("Visitor asked: " + " · ".join(_one_line(q, 160) for q in questions[-SUMMARY_QUESTIONS:]))
    if unanswered:
        lines.append("Not answered: " + " · ".join(_one_line(q, 160) for q in unanswered[-SUMMARY_QUESTIONS:]))
    return "\n".join(lines)[:SUMMARY_CHARS]


def transcript_for_model(*, conversation: Conversation, most: int = 6000) -> str:
    """The conversation as plain lines for a model to summarise (the latest part when long)."""
    lines = []
    for message in conversation.messages.all():
        who = {"user": "Visitor", "assistant": "Assistant", "agent": "Team"}.get(message.role, message.role)
        lines.append(f"{who}: {_one_line(message.text, 600)}")
    return "\n".join(lines)[-most:]


def _contact(details: dict | None) -> dict:
    details = details or {}
    return {key: str(details.get(key) or "")[:254] for key in ("name", "email", "message") if details.get(key)}


def contact_of(*, conversation: Conversation) -> dict:
    """The contact details the visitor left last on this conversation ({} when none)."""
    return _contact(
        Feedback.objects.filter(conversation=conversation, kind=Feedback.Kind.CONTACT)
        .order_by("-created_at")
        .values_list("details", flat=True)
        .first()
    )


def _card(conversation: Conversation, handoff: Handoff | None, last: Message | None, contact: dict) -> dict:
    reason = Handoff.Reason(handoff.reason) if handoff else None
    return {
        "id": conversation.pk,
        "assistant": conversation.assistant.name,
        "state": conversation.handoff_state,
        "state_label": HandoffState(conversation.handoff_state).label,
        "reason": reason.value if reason else "",
        "reason_label": reason.label if reason else "",
        "trigger": handoff.trigger if handoff else "",
        "summary": handoff.summary if handoff else "",
        "page_url": (handoff.page_url if handoff else "") or conversation.page_url,
        "contact": contact,
        "assigned_to": person_name(handoff.assigned_to) if handoff else "",
        "assigned_to_id": handoff.assigned_to_id if handoff else None,
        "requested_at": handoff.requested_at.isoformat() if handoff else "",
        "unavailable": bool(handoff and handoff.unavailable_at),
        "last_message": _one_line(last.text, 140) if last else "",
        "last_role": last.role if last else "",
        "updated_at": conversation.updated_at.isoformat(),
    }


def conversation_cards(*, conversations: list[Conversation]) -> list[dict]:
    """Conversations as the inbox lists them (JSON-ready; every value is plain text for the page to
    escape), in three queries whatever their number: the latest handoff, the latest message of the
    visitor or the team, and the latest contact details of each."""
    ids = [conversation.pk for conversation in conversations]
    handoffs = {
        h.conversation_id: h
        for h in Handoff.objects.filter(conversation_id__in=ids)
        .select_related("assigned_to")
        .order_by("conversation_id", "-requested_at", "-id")
        .distinct("conversation_id")
    }
    last = {
        m.conversation_id: m
        for m in Message.objects.filter(conversation_id__in=ids, role__in=[Message.Role.USER, Message.Role.AGENT])
        .order_by("conversation_id", "-created_at", "-id")
        .distinct("conversation_id")
    }
    contacts = dict(
        Feedback.objects.filter(conversation_id__in=ids, kind=Feedback.Kind.CONTACT)
        .order_by("conversation_id", "-created_at", "-id")
        .distinct("conversation_id")
        .values_list("conversation_id", "details")
    )
    return [_card(c, handoffs.get(c.pk), last.get(c.pk), _contact(contacts.get(c.pk))) for c in conversations]


def conversation_card(*, conversation: Conversation) -> dict:
    """One conversation as the inbox lists it (see :func:`conversation_cards`)."""
    return conversation_cards(conversations=[conversation])[0]


def inbox_conversations(*, team: Team) -> list[Conversation]:
    """The team's conversations waiting for a person or with one, latest activity first."""
    return list(
        Conversation.objects.filter(assistant__team=team, handoff_state__in=ACTIVE)
        .select_related("assistant")
        .order_by("-updated_at", "-id")[:200]
    )


def inbox_messages(*, conversation: Conversation) -> list[Message]:
    return list(conversation.messages.select_related("author"))


# --- Cursors and what the streams send -------------------------------------------------------------

_CURSOR = re.compile(r"^(\d{1,18})-(\d{1,18})$")


@dataclass(frozen=True)
class Cursor:
    """Where a stream is: the last message id and the last event id it sent. ``str()`` is the SSE id."""

    message: int = 0
    event: int = 0

    def __str__(self) -> str:
        return f"{self.message}-{self.event}"

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        found = _CURSOR.match((value or "").strip())
        return cls(int(found[1]), int(found[2])) if found else None


def _max_id(rows) -> int:
    return rows.order_by("-id").values_list("id", flat=True).first() or 0


def cursor_for_visitor(*, conversation_id: int) -> Cursor:
    """The cursor after everything the visitor's stream would send of this conversation so far."""
    return Cursor(
        _max_id(Message.objects.filter(conversation_id=conversation_id, role=Message.Role.AGENT)),
        _max_id(HandoffEvent.objects.filter(conversation_id=conversation_id)),
    )


def cursor_for_visitor_handoff(*, conversation: Conversation) -> Cursor:
    """The cursor just before the conversation's current handoff: a chat that was not following it (a
    member took the conversation over while the visitor's page read no live stream) gets its events
    and the team's replies from there."""
    handoff = handoff_current(conversation=conversation)
    if handoff is None:
        return cursor_for_visitor(conversation_id=conversation.pk)
    first_event = HandoffEvent.objects.filter(handoff=handoff).order_by("id").values_list("id", flat=True).first() or 1
    return Cursor(
        _max_id(
            Message.objects.filter(
                conversation_id=conversation.pk, role=Message.Role.AGENT, created_at__lt=handoff.requested_at
            )
        ),
        first_event - 1,
    )


def cursor_for_team(*, team_id: int) -> Cursor:
    return Cursor(
        _max_id(Message.objects.filter(conversation__assistant__team_id=team_id)),
        _max_id(HandoffEvent.objects.filter(team_id=team_id)),
    )


@dataclass
class Item:
    """One thing a stream sends: its SSE event name, its data, and the cursor after it (its id)."""

    name: str
    data: dict
    cursor: Cursor


def _merged(messages: list, events: list, start: Cursor, message_data, event_data) -> list[Item]:
    """Messages and events in the order they happened, each with the cursor after it."""
    rows = [(m.created_at, 0, m) for m in messages] + [(e.created_at, 1, e) for e in events]
    rows.sort(key=lambda row: (row[0], row[1], row[2].pk))
    items, message_id, event_id = [], start.message, start.event
    for _, is_event, row in rows:
        if is_event:
            event_id = max(event_id, row.pk)
            items.append(Item("handoff", event_data(row), Cursor(message_id, event_id)))
        else:
            message_id = max(message_id, row.pk)
            items.append(Item("message", message_data(row), Cursor(message_id, event_id)))
    return items


def _message_data(message: Message, team: Team | None = None) -> dict:
    data = {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "text": message.text,
        "author": person_name(message.author) if message.role == Message.Role.AGENT else "",
        "created_at": message.created_at.isoformat(),
    }
    if team is not None and message.role == Message.Role.AGENT:
        data["label"] = agent_label(message.author, team)
    return data


def _visitor_event_data(event: HandoffEvent, team: Team) -> dict:
    handoff = event.handoff
    return {
        "event_id": event.pk,
        "kind": event.kind,
        "state": event.to_state,
        "agent": agent_label(handoff.assigned_to, team) if handoff and event.to_state == HandoffState.OPEN else "",
    }


def visitor_items_after(*, conversation: Conversation, cursor: Cursor) -> list[Item]:
    """What the visitor's stream sends after ``cursor``: the team's messages and the handoff's events."""
    team = conversation.assistant.team
    messages = list(
        Message.objects.filter(conversation=conversation, role=Message.Role.AGENT, pk__gt=cursor.message)
        .select_related("author")
        .order_by("id")[:BATCH]
    )
    events = list(
        HandoffEvent.objects.filter(conversation=conversation, pk__gt=cursor.event)
        .select_related("handoff__assigned_to")
        .order_by("id")[:BATCH]
    )
    return _merged(messages, events, cursor, lambda m: _message_data(m, team), lambda e: _visitor_event_data(e, team))


def inbox_items_after(*, team: Team, cursor: Cursor) -> list[Item]:
    """What the inbox's stream sends after ``cursor``: the visitors' and the team's messages in
    conversations with a person or waiting for one, and every handoff event (with the card)."""
    messages = list(
        Message.objects.filter(
            Q(conversation__handoff_state__in=ACTIVE) | Q(role=Message.Role.AGENT),
            conversation__assistant__team=team,
            role__in=[Message.Role.USER, Message.Role.AGENT],
            pk__gt=cursor.message,
        )
        .select_related("author")
        .order_by("id")[:BATCH]
    )
    events = list(
        HandoffEvent.objects.filter(team=team, pk__gt=cursor.event)
        .select_related("user", "conversation__assistant")
        .order_by("id")[:BATCH]
    )
    cards = {}

    def event_data(event: HandoffEvent) -> dict:
        if event.conversation_id not in cards:
            cards[event.conversation_id] = conversation_card(conversation=event.conversation)
        return {
            "event_id": event.pk,
            "conversation_id": event.conversation_id,
            "kind": event.kind,
            "from_state": event.from_state,
            "state": event.to_state,
            "actor": event.actor,
            "by": person_name(event.user),
            "reason": event.reason,
            "card": cards[event.conversation_id],
        }

    return _merged(messages, events, cursor, _message_data, event_data)


def on_duty_memberships(*, team: Team) -> list[tuple[int, str]]:
    """The team's members on duty (they get the handoff emails; nobody: owners and admins), as (user
    id, name), by name: one query."""
    rows = team.memberships.filter(on_duty=True, user__is_active=True).select_related("user")
    return sorted(((row.user_id, person_name(row.user) or row.user.username) for row in rows), key=lambda r: r[1])
