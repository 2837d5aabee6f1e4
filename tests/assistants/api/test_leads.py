"""Leads in the REST API: list (filters, newest first, cursor), detail, and status/notes updates."""

import pytest

from assistants.models import Conversation, Lead
from tests.assistants.api.conftest import assert_error
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(team, assistant):
    other = make_assistant(team, name="Docs")
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 30)
    return [
        Lead.objects.create(
            team=team,
            assistant=assistant,
            conversation=conversation,
            name="Ada",
            email="ada@example.com",
            score=80,
            intent="pricing",
            consent_text="You may call me.",
            score_parts={"intent": {"points": 20, "max": 35, "why": "pricing"}},
        ),
        Lead.objects.create(team=team, assistant=other, email="bob@example.com", score=30, status="contacted"),
        Lead.objects.create(team=team, assistant=assistant, phone="+33 6 12 34 56 78", score=55),
    ]


def test_list_filter_and_page(api, leads):
    ada, bob, third = leads
    data = api.get("/leads").json()
    assert [lead["id"] for lead in data["data"]] == [third.pk, bob.pk, ada.pk] and data["next_cursor"] is None
    assert [lead["id"] for lead in api.get("/leads", min_score=50).json()["data"]] == [third.pk, ada.pk]
    assert [lead["id"] for lead in api.get("/leads", status="contacted").json()["data"]] == [bob.pk]
    assert [lead["id"] for lead in api.get("/leads", assistant_id=bob.assistant_id).json()["data"]] == [bob.pk]
    first = api.get("/leads", limit=2).json()
    assert (
        len(first["data"]) == 2
        and api.get("/leads", limit=2, cursor=first["next_cursor"]).json()["data"][0]["id"] == ada.pk
    )
    assert_error(api.get("/leads", status="won"), 400, "invalid_request")


def test_detail_and_update(api, leads, api_with, team):
    ada = leads[0]
    body = api.get(f"/leads/{ada.pk}").json()
    assert body["name"] == "Ada" and body["consent"] == {"text": "You may call me.", "at": None}
    assert body["score"] == 80 and body["score_parts"]["intent"] == {"points": 20, "max": 35, "why": "pricing"}
    assert body["conversation_id"] == ada.conversation_id and body["status"] == "new"

    response = api.patch(f"/leads/{ada.pk}", {"status": "qualified", "notes": "Budget approved"})
    assert response.status_code == 200 and response.json()["status"] == "qualified"
    ada.refresh_from_db()
    assert ada.status == "qualified" and ada.notes == "Budget approved"
    assert_error(api.patch(f"/leads/{ada.pk}", {"status": "won"}), 400, "validation_failed")
    assert_error(api.patch(f"/leads/{ada.pk}", {"score": 100}), 400, "invalid_request")
    read_only = api_with(team, ["read"])
    assert_error(read_only.patch(f"/leads/{ada.pk}", {"status": "closed"}), 403, "insufficient_scope")
