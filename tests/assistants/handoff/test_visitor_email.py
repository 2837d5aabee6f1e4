"""The team's replies reach a visitor who left by email (a real local SMTP server), once each, in
plain text, and never while the visitor has the conversation open."""

import re
import time
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client

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
    assert "We ship to Norway. <b>Really</b>." in first and "/return/" in first
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


def link_in(message) -> str:
    return re.search(r"Continue the conversation: (\S+)", message.get_payload()).group(1)


def test_the_emailed_link_opens_the_conversation_for_its_visitor_in_another_browser(world, mailbox, eager_tasks):
    dana, conversation = world
    leave_email(conversation)
    other = Conversation.objects.create(assistant=conversation.assistant, visitor_token="v" * 24)  # later, same visitor
    services.agent_reply(conversation=conversation, user=dana, text="We ship to Norway.")
    link = link_in(mailbox.messages[0])
    assert str(conversation.visitor_token) not in link  # the link names the conversation, never the token

    browser = Client()  # another browser: no visitor cookie
    response = browser.get(urlsplit(link).path)
    assert response.status_code == 302
    assert response["Location"] == f"/a/{conversation.assistant.slug}/?conversation={conversation.pk}"
    assert response.cookies["cs_visitor"].value == conversation.visitor_token
    page = browser.get(response["Location"]).content.decode()
    assert f'data-resume-conversation="{conversation.pk}"' in page
    data = browser.get(
        f"/embed/{conversation.assistant.public_key}/conversation?conversation_id={conversation.pk}"
    ).json()
    assert data["conversation_id"] == conversation.pk != other.pk
    assert [m["text"] for m in data["messages"] if m["role"] == "agent"] == ["We ship to Norway."]
    assert data["handoff"]["agent"] == "Dana from Acme"
    # Another visitor cannot name someone else's conversation: they get their own (none).
    stranger = Client()
    stranger.cookies["cs_visitor"] = "s" * 24
    url = f"/embed/{conversation.assistant.public_key}/conversation?conversation_id={conversation.pk}"
    assert stranger.get(url).json()["conversation_id"] is None


def test_a_tampered_or_expired_link_is_refused_with_a_clear_page(world, settings):
    dana, conversation = world
    link = urlsplit(emails.return_link(conversation)).path
    slug = conversation.assistant.slug
    token = link.rsplit("/", 1)[1]

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = Client().get(f"/a/{slug}/return/{tampered}")
    assert response.status_code == 400 and "cs_visitor" not in response.cookies
    assert "This link is not valid" in response.content.decode()
    forged = signing.dumps({"c": conversation.pk, "a": conversation.assistant_id}, salt="another purpose")
    assert Client().get(f"/a/{slug}/return/{forged}").status_code == 400
    elsewhere = make_assistant(team=conversation.assistant.team)
    assert Client().get(f"/a/{elsewhere.slug}/return/{token}").status_code == 400  # not this assistant's

    settings.HANDOFF_RETURN_LINK_DAYS = 14

    class FifteenDaysAgo(signing.TimestampSigner):  # the link as it was made fifteen days ago
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 15 * 86400)

    expired = FifteenDaysAgo(salt=emails.RETURN_SALT).sign_object(
        {"c": conversation.pk, "a": conversation.assistant_id}
    )
    assert emails.return_link_conversation(token) == conversation.pk  # today's is good
    response = Client().get(f"/a/{slug}/return/{expired}")
    assert response.status_code == 410 and "This link has expired" in response.content.decode()
    assert "cs_visitor" not in response.cookies
