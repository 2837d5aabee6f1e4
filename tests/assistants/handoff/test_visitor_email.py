"""The team's replies reach a visitor who left by email (a real local SMTP server), once each, in
plain text, and never while the visitor has the conversation open."""

import time

import pytest

from assistants.handoff import emails, live, services
from assistants.models import Conversation, Feedback
from chatsite.lib.shared_redis import redis_client
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    dana = make_user()
    dana.first_name = "Dana"
    dana.save()
    assistant = make_assistant(team=make_team(owner=dana, name="Acme"), name="Gadget Help")
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 24, page_url="https://shop.example/cart"
    )
    redis_client().delete(live.presence_key(conversation.pk), emails._sent_key(conversation.pk))
    services.handoff_request(conversation=conversation, reason="visitor_asked")
    yield dana, conversation
    redis_client().delete(live.presence_key(conversation.pk), emails._sent_key(conversation.pk))


def leave_email(conversation, email="visitor@example.com"):
    Feedback.objects.create(conversation=conversation, kind="contact", details={"email": email, "name": "Vi"})


def test_a_visitor_who_left_gets_each_reply_once_by_email(world, mailbox, eager_tasks):
    dana, conversation = world
    leave_email(conversation)
    services.agent_reply(conversation=conversation, user=dana, text="We ship to Norway. <b>Really</b>.")
    services.agent_reply(conversation=conversation, user=dana, text="Delivery takes a week.")
    assert len(mailbox.messages) == 2  # eager: each reply's task runs at once (a worker waits and sends one)
    first, second = (message.get_payload() for message in mailbox.messages)
    assert mailbox.messages[0]["To"] == "visitor@example.com"
    assert mailbox.messages[0]["Subject"] == "Dana from Acme replied to you"
    assert "We ship to Norway. <b>Really</b>." in first and "https://shop.example/cart" in first
    assert "Delivery takes a week." in second and "Norway" not in second
    assert emails.visitor_replies_send(conversation_id=conversation.pk) == 0  # nothing new


def test_no_email_while_the_visitor_is_on_the_page_nor_without_an_address(world, mailbox, eager_tasks):
    dana, conversation = world
    services.agent_reply(conversation=conversation, user=dana, text="No address: no email")
    redis_client().zadd(live.presence_key(conversation.pk), {"a-tab": time.time() + 30})  # as a stream marks it
    leave_email(conversation)
    services.agent_reply(conversation=conversation, user=dana, text="Seen live")
    assert mailbox.messages == []
    redis_client().delete(live.presence_key(conversation.pk))
    services.agent_reply(conversation=conversation, user=dana, text="After they left")
    assert len(mailbox.messages) == 1
    body = mailbox.messages[0].get_payload()
    assert "After they left" in body and "Seen live" not in body
