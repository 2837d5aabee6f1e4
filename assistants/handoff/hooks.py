"""The calls other features hang on: emails to the team, webhooks (``handoff.requested``,
``handoff.resolved``, ``message.created``). Each is called once per change, by ``services``, after
the transaction that made it has committed (so a receiver sees the rows, and a rolled-back change
calls nothing), in the process that made the change. They must not raise into the caller: a
notification that fails is the notification's problem, not the visitor's or the agent's.

They record the event in the log (logger ``assistants.handoff.hooks``) and send the team's webhooks
(through ``assistants.webhooks.services.emit``, which enqueues each delivery) and emails (a Celery task
with the ids):

    on_handoff_requested(conversation)  a visitor's conversation now waits for a person (pending)
    on_handoff_resolved(conversation)   a team member resolved it
    on_handoff_taken_over(conversation, user)  a member took a conversation nobody handed over (log only)
    on_agent_message(message)           a team member wrote to the visitor (Message.role "agent")

A visitor's messages while a person has the conversation send ``message.created`` from ``services``
(inside the transaction that stores them).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from assistants.webhooks import services as webhooks

if TYPE_CHECKING:
    from assistants.models import Conversation, Message

logger = logging.getLogger(__name__)


def _safely(name: str, call, *args) -> None:
    try:
        call(*args)
    except Exception:  # a failed notification must never undo or fail the handoff
        logger.exception("handoff hook %s failed", name)


def on_handoff_requested(conversation: Conversation) -> None:
    """A conversation went to ``pending``: the handoff (reason, summary) is ``conversation.handoffs.first()``."""
    _safely("on_handoff_requested", _record, "handoff.requested", conversation.pk, None)
    _safely("on_handoff_requested", _handoff_webhook, "handoff.requested", conversation)
    _safely("on_handoff_requested", _handoff_email, conversation)


def on_handoff_resolved(conversation: Conversation) -> None:
    """A team member resolved the conversation (``pending`` or ``open`` → ``resolved``)."""
    _safely("on_handoff_resolved", _record, "handoff.resolved", conversation.pk, None)
    _safely("on_handoff_resolved", _handoff_webhook, "handoff.resolved", conversation)


def on_handoff_taken_over(conversation: Conversation, user) -> None:
    """A member took a conversation the visitor never handed over (``bot``/``resolved`` → ``open``):
    recorded in the log; no email (the member is there) and no webhook (nobody asked for a person)."""
    _safely("on_handoff_taken_over", _record, "handoff.taken_over", conversation.pk, None)


def on_agent_message(message: Message) -> None:
    """A team member's reply to the visitor was stored (``message.author`` wrote it)."""
    _safely("on_agent_message", _record, "message.created", message.conversation_id, message.pk)
    _safely("on_agent_message", webhooks.message_created, message)


def _handoff_webhook(event: str, conversation: Conversation) -> None:
    handoff = conversation.handoffs.select_related("assigned_to", "resolved_by").order_by("-requested_at").first()
    webhooks.emit(
        team=conversation.assistant.team_id,
        event_type=event,
        data={
            "conversation_id": conversation.pk,
            "assistant_id": conversation.assistant_id,
            "state": conversation.handoff_state,
            "reason": handoff.reason if handoff else "",
            "summary": handoff.summary if handoff else "",
            "page_url": (handoff.page_url if handoff else "") or conversation.page_url,
            "requested_at": handoff.requested_at.isoformat() if handoff else None,
            "resolved_at": handoff.resolved_at.isoformat() if handoff and handoff.resolved_at else None,
        },
    )


def _handoff_email(conversation: Conversation) -> None:
    from assistants.tasks import notify_handoff_requested

    notify_handoff_requested.delay(conversation.pk)


def _record(event: str, conversation_id: int, message_id: int | None) -> None:
    logger.info(
        "%s conversation=%s message=%s",
        event,
        conversation_id,
        message_id,
        extra={"handoff_event": event, "conversation_id": conversation_id, "message_id": message_id},
    )
