"""The team's handoffs in the API: newest first, filtered by status, never another team's."""

import pytest

from assistants.handoff import services
from assistants.models import Conversation, Message
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db


def handed_over(assistant, text, reason="visitor_asked"):
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 24, page_url="https://x.example/"
    )
    Message.objects.create(conversation=conversation, role="user", text=text)
    services.handoff_request(conversation=conversation, reason=reason, trigger="button")
    return conversation


def test_handoffs_are_listed_newest_first_with_status_reason_and_summary(api, assistant, team):
    first = handed_over(assistant, "Do you ship to Norway?")
    second = handed_over(assistant, "Refund please", reason="rule")
    dana = make_user()
    dana.first_name = "Dana"
    dana.save()
    services.handoff_assign(conversation=first, user=dana)
    handed_over(make_assistant(make_team()), "their secret")  # another team's

    data = api.get("/handoffs").json()["data"]
    assert [h["conversation_id"] for h in data] == [second.pk, first.pk]
    assert data[1]["status"] == "open" and data[1]["assigned_to"] == "Dana" and data[1]["reason"] == "visitor_asked"
    assert data[0]["status"] == "pending" and data[0]["assigned_to"] is None and data[0]["reason"] == "rule"
    assert "Visitor asked: Do you ship to Norway?" in data[1]["summary"] and data[1]["assistant_id"] == assistant.pk
    assert [h["conversation_id"] for h in api.get("/handoffs", status="pending").json()["data"]] == [second.pk]
    services.handoff_resolve(conversation=first, user=dana)
    resolved = api.get("/handoffs", status="resolved").json()["data"]
    assert [h["conversation_id"] for h in resolved] == [first.pk] and resolved[0]["resolved_at"]
    assert api.get("/handoffs", status="nonsense").status_code in (400, 422)
