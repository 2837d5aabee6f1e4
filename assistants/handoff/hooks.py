"""The calls other features hang on: emails to the team, webhooks (``handoff.requested``,
``handoff.resolved``, ``message.created``). Each is called once per change, by ``services``, after
the transaction that made it has committed (so a receiver sees the rows, and a rolled-back change
calls nothing), in the process that made the change. They must not raise into the caller: a
notification that fails is the notification's problem, not the visitor's or the agent's.

For now they record the event in the log (logger ``assistants.handoff.hooks``); the state change
itself is already a ``HandoffEvent`` row. Wire notifications here, in one place:

    on_handoff_requested(conversation)  a visitor's conversation now waits for a person (pending)
    on_handoff_resolved(conversation)   a team member resolved it
    on_agent_message(message)           a team member wrote to the visitor (Message.role "agent")

A receiver that sends anything should enqueue a Celery task with the ids (``conversation.pk``,
``message.pk``) rather than send from here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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


def on_handoff_resolved(conversation: Conversation) -> None:
    """A team member resolved the conversation (``pending`` or ``open`` → ``resolved``)."""
    _safely("on_handoff_resolved", _record, "handoff.resolved", conversation.pk, None)


def on_agent_message(message: Message) -> None:
    """A team member's reply to the visitor was stored (``message.author`` wrote it)."""
    _safely("on_agent_message", _record, "message.created", message.conversation_id, message.pk)


def _record(event: str, conversation_id: int, message_id: int | None) -> None:
    logger.info(
        "%s conversation=%s message=%s",
        event,
        conversation_id,
        message_id,
        extra={"handoff_event": event, "conversation_id": conversation_id, "message_id": message_id},
    )
