"""A handoff reaches the team outside the dashboard: its webhooks (``handoff.requested``, the visitor's and
the agent's ``message.created``, ``handoff.resolved``) are queued through the one ``emit``, and the team's
admins are emailed when a visitor waits (a real local SMTP server receives it)."""

import pytest

from assistants import tasks
from assistants.handoff import services
from assistants.models import Conversation, WebhookDelivery, WebhookEndpoint
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)  # the hooks run after commit, as in production

EVENTS = ["handoff.requested", "handoff.resolved", "message.created"]


@pytest.fixture
def world():
    owner = make_user("dana")
    owner.email = "dana@acme.example"
    owner.save()
    team = make_team(owner=owner, name="Acme")
    assistant = make_assistant(team=team)
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 24, page_url="https://shop.example/"
    )
    endpoint = WebhookEndpoint.objects.create(
        team=team, url="https://93.184.216.34/hook", events=EVENTS, secret="whsec_" + "A" * 32
    )
    return owner, conversation, endpoint


def sent(endpoint):
    return [(d.event_type, d.payload["data"]) for d in WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id")]


def test_a_handoff_sends_its_webhooks_in_order(world):
    owner, conversation, endpoint = world
    services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="talk to a human")
    services.handoff_assign(conversation=conversation, user=owner)
    services.visitor_turn(conversation=conversation, text="Are you there? <b>hi</b>")
    services.agent_reply(conversation=conversation, user=owner, text="Yes, Dana here.")
    services.handoff_resolve(conversation=conversation, user=owner)

    events = sent(endpoint)
    assert [event for event, _ in events] == [
        "handoff.requested",
        "message.created",
        "message.created",
        "handoff.resolved",
    ]
    requested, visitor, agent, resolved = (data for _, data in events)
    assert requested["conversation_id"] == conversation.pk and requested["reason"] == "visitor_asked"
    assert requested["state"] == "pending" and requested["page_url"] == "https://shop.example/"
    assert (visitor["role"], visitor["text"]) == ("user", "Are you there? <b>hi</b>")  # as typed, a JSON string
    assert (agent["role"], agent["text"]) == ("agent", "Yes, Dana here.")
    assert resolved["state"] == "resolved" and resolved["resolved_at"]


def test_an_endpoint_that_did_not_ask_for_handoffs_gets_none(world):
    owner, conversation, endpoint = world
    endpoint.events = ["lead.created"]
    endpoint.save()
    services.handoff_request(conversation=conversation, reason="visitor_asked")
    services.handoff_resolve(conversation=conversation, user=owner)
    assert sent(endpoint) == []


def test_the_teams_admins_are_emailed_when_a_visitor_waits(world, mailbox):
    owner, conversation, _ = world
    services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="talk to a human")
    tasks.notify_handoff_requested(conversation.pk)  # what the worker runs from the hook's queued task
    message = mailbox.wait_for("dana@acme.example")
    assert [m["X-Envelope-To"] for m in mailbox.messages] == ["dana@acme.example"]
    assert "talk to a human" in str(message.get_body(preferencelist=("plain",)).get_content())
