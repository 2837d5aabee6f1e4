"""Writes for the handoff: the state machine and the messages of a conversation a person has.

States (``HandoffState``): ``bot`` (the assistant answers) → ``pending`` (a person was asked for) →
``open`` (a team member has it) → ``resolved``; the visitor writing to a resolved conversation sends
it back to ``bot``. Every change is a ``HandoffEvent`` (who, when, from, to, why).

Each write takes the team's advisory lock for its transaction, so the team's handoff messages and
events get their ids in the order they commit: a live stream that has sent id N has seen every row
below it (``live``). After commit each write wakes the streams (Redis pub/sub) and calls its hook
(``hooks``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.utils import timezone

from assistants.handoff import hooks, live, selectors, triggers
from assistants.models import Conversation, Feedback, Handoff, HandoffEvent, HandoffSettings, HandoffState, Message
from assistants.webhooks import services as webhooks

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

State = HandoffState
Reason = Handoff.Reason
Actor = HandoffEvent.Actor

# (from, to): the changes the state machine allows.
TRANSITIONS = {
    (State.BOT, State.PENDING),
    (State.RESOLVED, State.PENDING),
    (State.RESOLVED, State.BOT),
    (State.PENDING, State.OPEN),
    (State.OPEN, State.OPEN),  # another member takes it over
    (State.BOT, State.OPEN),  # a member takes over a conversation that never asked for a person
    (State.RESOLVED, State.OPEN),
    (State.PENDING, State.RESOLVED),
    (State.OPEN, State.RESOLVED),
}
_LOCK_SPACE = 0x48414E44  # "HAND": pg_advisory_xact_lock(space, team id)
MAX_AGENT_MESSAGE_CHARS = 4000
VISITOR_EMAIL_DELAY = 60  # seconds: replies written meanwhile go in the same email


class HandoffError(ValueError):
    """A change the conversation cannot take now (its text says why, for the person who tried)."""


def _locked(conversation_id: int, team_id: int | None = None) -> Conversation:
    """The conversation, its row locked, after the team's handoff lock (inside a transaction);
    ``team_id``: the conversation's team when the caller knows it (else it is read)."""
    if team_id is None:
        team_id = Conversation.objects.filter(pk=conversation_id).values_list("assistant__team_id", flat=True).get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_SPACE, team_id])
    return (
        Conversation.objects.select_for_update(of=("self",)).select_related("assistant__team").get(pk=conversation_id)
    )


def _event(
    conversation: Conversation, *, to: str, handoff=None, kind=HandoffEvent.Kind.STATE, actor, user=None, reason=""
):
    """Record a change (and make it, for a state change); refuses a change the machine does not allow."""
    before = conversation.handoff_state
    if kind == HandoffEvent.Kind.STATE:
        if (before, to) not in TRANSITIONS:
            raise HandoffError(
                f"A conversation cannot go from {State(before).label.lower()} to {State(to).label.lower()}."
            )
        conversation.handoff_state = to
        Conversation.objects.filter(pk=conversation.pk).update(handoff_state=to, updated_at=timezone.now())
    return HandoffEvent.objects.create(
        conversation=conversation,
        team_id=conversation.assistant.team_id,
        handoff=handoff,
        kind=kind,
        from_state=before,
        to_state=to,
        actor=actor,
        user=user,
        reason=str(reason)[:300],
    )


def _after_commit(conversation: Conversation, *calls) -> None:
    team_id, conversation_id = conversation.assistant.team_id, conversation.pk

    def run():
        live.publish(team_id=team_id, conversation_id=conversation_id)
        for call in calls:
            call()

    transaction.on_commit(run)


def _mirror(conversation: Conversation, locked: Conversation) -> None:
    conversation.handoff_state = locked.handoff_state


# --- The state machine ---------------------------------------------------------------------------


def handoff_request(
    *,
    conversation: Conversation,
    reason: str,
    trigger: str = "",
    actor: str = Actor.VISITOR,
    user: User | None = None,
    page_url: str = "",
    now=None,
) -> Handoff | None:
    """Hand the conversation to the team (→ ``pending``) with a reason and a summary for the person.
    Asking again while it waits or is open changes nothing (the current handoff is returned). None when
    the assistant's handoff is off (the visitor then leaves contact details instead). Outside the team's
    hours the visitor is told at once (an ``unavailable`` event), and the conversation still waits."""
    reason = Reason(reason)
    settings = selectors.handoff_settings(assistant=conversation.assistant)
    if not settings.enabled:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(conversation.pk)
        if locked.handoff_state in selectors.ACTIVE:
            _mirror(conversation, locked)
            return selectors.handoff_current(conversation=locked)
        handoff = Handoff.objects.create(
            conversation=locked,
            reason=reason,
            trigger=str(trigger)[:300],
            summary=selectors.extractive_summary(conversation=locked, reason=reason, trigger=trigger),
            summary_by="extractive",
            page_url=(page_url or locked.page_url)[:2000],
        )
        _event(
            locked, to=State.PENDING, handoff=handoff, actor=actor, user=user, reason=f"{reason.value}: {trigger}"[:300]
        )
        if not triggers.within_hours(hours=settings.hours, timezone=settings.timezone, now=now):
            handoff.unavailable_at = now
            handoff.save(update_fields=["unavailable_at"])
            _event(
                locked,
                to=State.PENDING,
                handoff=handoff,
                kind=HandoffEvent.Kind.UNAVAILABLE,
                actor=Actor.SYSTEM,
                reason="outside the team's hours",
            )
        summarise = _summary_by_model_queued(handoff)
        _after_commit(locked, summarise, lambda: hooks.on_handoff_requested(locked))
    _mirror(conversation, locked)
    return handoff


def _summary_by_model_queued(handoff: Handoff):
    """When the assistant has a language model, a worker writes the summary with it (the extractive
    one stays until then, and when the model fails)."""
    from assistants.answering.providers import provider_from_settings

    if provider_from_settings(handoff.conversation.assistant) is None:
        return lambda: None

    def enqueue():
        from assistants.tasks import handoff_summarize_task

        handoff_summarize_task.delay(handoff.pk)

    return enqueue


def handoff_assign(*, conversation: Conversation, user: User) -> Handoff:
    """The member takes the conversation (``pending`` → ``open``, or from another member)."""
    with transaction.atomic():
        locked = _locked(conversation.pk)
        handoff = selectors.handoff_current(conversation=locked)
        if locked.handoff_state not in selectors.ACTIVE or handoff is None:
            raise HandoffError("This conversation is not waiting for a person.")
        if locked.handoff_state == State.OPEN and handoff.assigned_to_id == user.pk:
            _mirror(conversation, locked)
            return handoff
        _take(locked, handoff, user)
        _after_commit(locked)
    _mirror(conversation, locked)
    return handoff


def handoff_take_over(*, conversation: Conversation, user: User, why: str = "") -> Handoff:
    """A member takes a conversation the assistant answers (or a resolved one) without the visitor
    asking: ``bot``/``resolved`` → ``open``, assigned to them, recorded with who, when and why (reason
    ``taken_over``). From then on the assistant does not answer; the visitor's next message shows who
    replies, and the team's replies reach them live or by email (``agent_reply``)."""
    why = " ".join(str(why).split())[:200]
    with transaction.atomic():
        locked = _locked(conversation.pk)
        if locked.handoff_state in selectors.ACTIVE:
            raise HandoffError("This conversation is already with the team: open it in the inbox.")
        now = timezone.now()
        handoff = Handoff.objects.create(
            conversation=locked,
            reason=Reason.TAKEN_OVER,
            trigger=why,
            summary=selectors.extractive_summary(conversation=locked, reason=Reason.TAKEN_OVER, trigger=why),
            summary_by="extractive",
            page_url=locked.page_url[:2000],
            assigned_to=user,
            assigned_at=now,
        )
        _event(
            locked,
            to=State.OPEN,
            handoff=handoff,
            actor=Actor.AGENT,
            user=user,
            reason=f"taken over: {why}" if why else "taken over by a member",
        )
        _after_commit(locked, lambda: hooks.on_handoff_taken_over(locked, user))
    _mirror(conversation, locked)
    return handoff


def _take(locked: Conversation, handoff: Handoff, user: User) -> None:
    previous = selectors.person_name(handoff.assigned_to)
    handoff.assigned_to = user
    handoff.assigned_at = timezone.now()
    handoff.save(update_fields=["assigned_to", "assigned_at"])
    kind = HandoffEvent.Kind.STATE if locked.handoff_state == State.PENDING else HandoffEvent.Kind.ASSIGNED
    reason = f"taken over from {previous}" if previous else "assigned"
    _event(locked, to=State.OPEN, handoff=handoff, kind=kind, actor=Actor.AGENT, user=user, reason=reason)


def handoff_resolve(*, conversation: Conversation, user: User) -> Handoff:
    """The member closes the handoff (``resolved``); the visitor's next message goes to the assistant."""
    with transaction.atomic():
        locked = _locked(conversation.pk)
        handoff = selectors.handoff_current(conversation=locked)
        if locked.handoff_state not in selectors.ACTIVE or handoff is None:
            raise HandoffError("This conversation is not with the team.")
        handoff.resolved_at = timezone.now()
        handoff.resolved_by = user
        handoff.save(update_fields=["resolved_at", "resolved_by"])
        _event(locked, to=State.RESOLVED, handoff=handoff, actor=Actor.AGENT, user=user, reason="resolved")
        _after_commit(locked, lambda: hooks.on_handoff_resolved(locked))
    _mirror(conversation, locked)
    return handoff


def handoff_check_wait(*, conversation_id: int, now=None) -> bool:
    """When nobody took the conversation within the team's time, tell the visitor once (an
    ``unavailable`` event: the chat offers to leave an email). True when it did so now."""
    now = now or timezone.now()
    waiting = Handoff.objects.filter(
        conversation_id=conversation_id,
        conversation__handoff_state=State.PENDING,
        unavailable_at__isnull=True,
        resolved_at__isnull=True,
    )
    if not waiting.exists():  # the common case, without taking the team's lock
        return False
    with transaction.atomic():
        locked = _locked(conversation_id)
        handoff = selectors.handoff_current(conversation=locked)
        if locked.handoff_state != State.PENDING or handoff is None or handoff.unavailable_at is not None:
            return False
        settings = selectors.handoff_settings(assistant=locked.assistant)
        if now < handoff.requested_at + timedelta(seconds=settings.wait_seconds):
            return False
        handoff.unavailable_at = now
        handoff.save(update_fields=["unavailable_at"])
        minutes = max(1, round(settings.wait_seconds / 60))
        _event(
            locked,
            to=State.PENDING,
            handoff=handoff,
            kind=HandoffEvent.Kind.UNAVAILABLE,
            actor=Actor.SYSTEM,
            reason=f"nobody took it within {minutes} minute{'s' if minutes != 1 else ''}",
        )
        _after_commit(locked)
    return True


def handoff_settings_update(*, assistant, **fields) -> HandoffSettings:
    """Save the assistant's handoff settings (``enabled``, ``wait_seconds``, ``timezone``, ``hours``,
    ``keywords``, ``page_patterns``)."""
    settings, _ = HandoffSettings.objects.get_or_create(assistant=assistant)
    for name, value in fields.items():
        setattr(settings, name, value)
    settings.save()
    return settings


def handoff_summary_set(*, handoff_id: int, summary: str, by: str) -> None:
    Handoff.objects.filter(pk=handoff_id).update(summary=summary[: selectors.SUMMARY_CHARS], summary_by=by[:60])


# --- Messages while a person has the conversation ----------------------------------------------


def agent_reply(*, conversation: Conversation, user: User, text: str) -> Message:
    """A team member's message to the visitor; replying to a conversation that waits takes it."""
    text = str(text).strip()[:MAX_AGENT_MESSAGE_CHARS]
    if not text:
        raise HandoffError("Write a reply first.")
    with transaction.atomic():
        locked = _locked(conversation.pk)
        handoff = selectors.handoff_current(conversation=locked)
        if locked.handoff_state not in selectors.ACTIVE or handoff is None:
            raise HandoffError("This conversation is not with the team: the assistant answers it.")
        if locked.handoff_state == State.PENDING:
            _take(locked, handoff, user)
        message = Message.objects.create(conversation=locked, role=Message.Role.AGENT, author=user, text=text)
        Conversation.objects.filter(pk=locked.pk).update(updated_at=message.created_at)
        _after_commit(locked, lambda: hooks.on_agent_message(message), lambda: _email_if_away(locked.pk, message.pk))
    _mirror(conversation, locked)
    return message


def _email_if_away(conversation_id: int, message_id: int) -> None:
    """The visitor has no live stream open and left an email: a worker sends them the team's replies
    (every reply they have not seen, in one email, after ``VISITOR_EMAIL_DELAY`` seconds)."""
    from assistants.handoff import emails

    if live.visitor_present(conversation_id):
        emails.replies_seen(conversation_id=conversation_id, message_id=message_id)
        return
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or not selectors.contact_of(conversation=conversation).get("email"):
        return
    from assistants.tasks import handoff_visitor_email_task

    handoff_visitor_email_task.apply_async((conversation_id,), countdown=VISITOR_EMAIL_DELAY)


@dataclass
class Turn:
    """What became of a visitor's message: ``held`` (stored for the team; the assistant does not
    answer) with the handoff, or not held (the assistant answers it)."""

    held: bool
    message: Message | None = None
    handoff: Handoff | None = None
    started: bool = False  # this message handed the conversation over


def visitor_turn(*, conversation: Conversation, text: str, page_url: str = "") -> Turn:
    """Before the assistant answers: while a person has the conversation (or it waits for one) the
    message is stored for the team and the assistant stays quiet; a resolved conversation goes back
    to the assistant; a visitor asking for a person, or a message meeting the team's rules, hands the
    conversation over (the message is stored, not answered).

    A conversation the assistant has (``bot``, as ``conversation`` was read a moment ago: a new one, or
    the visitor's own just fetched) is not locked to be read again: its state is what the lock would
    read, unless a team member takes it over in between, which may as well happen just after the lock
    is released (the assistant then answers this one message, as it would have either way)."""
    settings = selectors.handoff_settings(assistant=conversation.assistant)
    team_id = conversation.assistant.team_id
    if conversation.handoff_state != State.BOT:
        with transaction.atomic():
            locked = _locked(conversation.pk, team_id)
            if locked.handoff_state in selectors.ACTIVE:
                message = Message.objects.create(conversation=locked, role=Message.Role.USER, text=text)
                Conversation.objects.filter(pk=locked.pk).update(updated_at=message.created_at)
                webhooks.message_created(message)
                _after_commit(locked)
                _mirror(conversation, locked)
                return Turn(held=True, message=message, handoff=selectors.handoff_current(conversation=locked))
            if locked.handoff_state == State.RESOLVED:
                _event(locked, to=State.BOT, actor=Actor.VISITOR, reason="the visitor wrote again")
                _after_commit(locked)
            _mirror(conversation, locked)
    if not settings.enabled:
        return Turn(held=False)
    asked = triggers.asks_for_person(text)
    rule = (
        ""
        if asked
        else triggers.rule_matched(
            keywords=settings.keywords,
            page_patterns=settings.page_patterns,
            text=text,
            page_url=page_url or conversation.page_url,
        )
    )
    if not asked and not rule:
        return Turn(held=False)
    with transaction.atomic():
        locked = _locked(conversation.pk, team_id)
        message = Message.objects.create(conversation=locked, role=Message.Role.USER, text=text)
        Conversation.objects.filter(pk=locked.pk).update(updated_at=message.created_at)
        webhooks.message_created(message)
        handoff = handoff_request(
            conversation=locked,
            reason=Reason.VISITOR_ASKED if asked else Reason.RULE,
            trigger=asked or rule,
            page_url=page_url,
        )
    _mirror(conversation, locked)
    return Turn(held=True, message=message, handoff=handoff, started=True)


def after_answer(*, conversation: Conversation) -> Handoff | None:
    """After the assistant's answer: twice in a row without a supported answer hands the conversation
    to the team (reason ``missing_knowledge``); None otherwise."""
    if conversation.handoff_state != State.BOT or not selectors.unanswered_twice(conversation=conversation):
        return None
    return handoff_request(
        conversation=conversation, reason=Reason.MISSING_KNOWLEDGE, trigger="two answers in a row without support"
    )


def after_feedback(*, feedback: Feedback) -> Handoff | None:
    """An answer rated down with a comment hands the conversation to the team (``negative_feedback``)."""
    if feedback.kind != Feedback.Kind.RATING or feedback.rating != -1 or not feedback.comment.strip():
        return None
    conversation = feedback.conversation
    if conversation.handoff_state in selectors.ACTIVE:
        return None
    return handoff_request(
        conversation=conversation,
        reason=Reason.NEGATIVE_FEEDBACK,
        trigger=" ".join(feedback.comment.split())[:200],
    )
