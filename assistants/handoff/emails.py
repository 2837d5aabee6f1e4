"""The team's replies by email to a visitor who left (no live stream open) and gave an email address.

Replies written within ``services.VISITOR_EMAIL_DELAY`` go in one email; each reply is sent once
(the last one emailed is kept in Redis for ``SENT_DAYS``). The email is plain text: nothing a visitor
or a member wrote is ever HTML. Its link is signed and expires (``return_link``): it opens the
conversation for that visitor on the assistant's full page (``conversation_return``).
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.urls import reverse

from assistants.handoff import live, selectors
from assistants.models import Conversation, Message
from chatsite.lib.shared_redis import redis_client

logger = logging.getLogger(__name__)

SENT_DAYS = 30
RETURN_SALT = "assistants.handoff.return-link"


class ReturnLinkError(ValueError):
    """A link back to a conversation that cannot open it: ``expired`` or not ``valid`` (``kind``)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def return_link(conversation: Conversation) -> str:
    """A signed, expiring link that opens the conversation for its visitor on the full-page assistant
    (``HANDOFF_RETURN_LINK_DAYS``). It names the conversation only; the visitor's token never leaves."""
    token = signing.dumps({"c": conversation.pk, "a": conversation.assistant_id}, salt=RETURN_SALT)
    return settings.SITE_URL + reverse("conversation_return", args=[conversation.assistant.slug, token])


def return_link_conversation(token: str) -> int:
    """The conversation id a link names; ReturnLinkError when it expired or was changed."""
    try:
        data = signing.loads(token, salt=RETURN_SALT, max_age=settings.HANDOFF_RETURN_LINK_DAYS * 86400)
    except signing.SignatureExpired:
        raise ReturnLinkError("expired") from None
    except signing.BadSignature:
        raise ReturnLinkError("invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise ReturnLinkError("invalid")
    return data["c"]


def _sent_key(conversation_id: int) -> str:
    return f"handoff:emailed:{conversation_id}"


def _one_line(text: str, most: int = 120) -> str:
    return " ".join(str(text).split())[:most]


def replies_seen(*, conversation_id: int, message_id: int) -> None:
    """The visitor saw the replies up to ``message_id`` live: an email later leaves them out."""
    try:
        client = redis_client()
        if int(client.get(_sent_key(conversation_id)) or 0) < message_id:
            client.set(_sent_key(conversation_id), message_id, ex=SENT_DAYS * 86400)
    except redis.RedisError as exc:
        logger.warning("handoff: replies seen not recorded: %s", exc)


def visitor_replies_send(*, conversation_id: int) -> int:
    """Send the replies the visitor has not had by email; how many were sent (0: nothing to do, or the
    visitor is back on the page and reads them there)."""
    conversation = Conversation.objects.select_related("assistant__team").filter(pk=conversation_id).first()
    if conversation is None or live.visitor_present(conversation_id):
        return 0
    email = selectors.contact_of(conversation=conversation).get("email", "")
    if not email:
        return 0
    after = int(redis_client().get(_sent_key(conversation_id)) or 0)
    replies = list(
        Message.objects.filter(conversation=conversation, role=Message.Role.AGENT, pk__gt=after)
        .select_related("author")
        .order_by("id")
    )
    if not replies:
        return 0
    team = conversation.assistant.team
    who = selectors.agent_label(replies[-1].author, team) or _one_line(team.name)
    link = return_link(conversation)
    lines = [f"{who} replied to your conversation with {_one_line(conversation.assistant.name)}:", ""]
    for reply in replies:
        lines += [f"{selectors.person_name(reply.author) or 'The team'}:", reply.text.strip(), ""]
    days = settings.HANDOFF_RETURN_LINK_DAYS
    lines += [
        f"Continue the conversation: {link}",
        f"(the link is yours: it opens this conversation for {days} days; do not forward it)",
        "",
        "You get this email because you left your address in the chat.",
    ]
    send_mail(_one_line(f"{who} replied to you"), "\n".join(lines), None, [email])
    redis_client().set(_sent_key(conversation_id), replies[-1].pk, ex=SENT_DAYS * 86400)
    logger.info("handoff: %s replies emailed to the visitor of conversation %s", len(replies), conversation_id)
    return len(replies)
