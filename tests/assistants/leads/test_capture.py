"""Lead capture from the visitor's side: when the chat asks (after N answers, on buying intent in
any configured language, on a handoff request, never), once per conversation; the inline form's
server-side checks (errors at the field), declining, the rate limit; and the lead's score."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from assistants.leads import scoring
from assistants.leads import services as lead_services
from assistants.models import Conversation, Lead, LeadPrompt, Message
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db

TOKEN = "v" * 32


@pytest.fixture
def assistant():
    return make_assistant()


def conversation_with(assistant, *turns, token=TOKEN, unanswered=False) -> Conversation:
    conversation = Conversation.objects.create(assistant=assistant, visitor_token=token, page_url="https://shop.test/p")
    for question in turns:
        Message.objects.create(conversation=conversation, role="user", text=question)
        Message.objects.create(conversation=conversation, role="assistant", text="An answer.", unanswered=unanswered)
    return conversation


def post(assistant, name, payload, token=TOKEN):
    return Client().post(
        reverse(name, args=[assistant.public_key]),
        json.dumps(payload),
        content_type="application/json",
        HTTP_COOKIE=f"cs_visitor={token}",
    )


def check(assistant, conversation, **extra):
    response = post(assistant, "embed_lead_check", {"conversation_id": conversation.pk, **extra})
    assert response.status_code == 200
    return response.json()


def test_never_asks_unless_the_assistant_says_when(assistant):
    conversation = conversation_with(assistant, "What is your pricing?")
    assert check(assistant, conversation) == {"ask": False, "form": None}
    lead_services.lead_capture_save(assistant=assistant, triggers=[])
    assert check(assistant, conversation)["ask"] is False


def test_buying_intent_asks_once_per_conversation(assistant):
    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"], consent_text="You may call me.")
    conversation = conversation_with(assistant, "Where are you based?")
    assert check(assistant, conversation)["ask"] is False
    Message.objects.create(conversation=conversation, role="user", text="Can I book a DEMO next week?")
    answer = check(assistant, conversation)
    assert answer["ask"] is True
    form = answer["form"]
    assert form["trigger"] == "intent" and form["intent"] == "demo" and form["consent"] == "You may call me."
    assert [(f["key"], f["required"]) for f in form["fields"]] == [("name", False), ("email", True), ("company", False)]
    assert check(assistant, conversation)["ask"] is False  # once
    assert LeadPrompt.objects.get(conversation=conversation).intent == "demo"


def test_intent_words_are_per_language_and_editable(assistant):
    lead_services.lead_capture_save(
        assistant=assistant, triggers=["intent"], intent_phrases={"en": ["enterprise license"]}
    )
    assert check(assistant, conversation_with(assistant, "What is your pricing?"))["ask"] is False  # replaced
    assert (
        check(assistant, conversation_with(assistant, "Enterprise  license costs?"))["form"]["intent"]
        == "enterprise license"
    )
    assert (
        check(assistant, conversation_with(assistant, "Pouvez-vous m'envoyer un devis ?"))["form"]["intent"] == "devis"
    )
    assert check(assistant, conversation_with(assistant, "试用怎么申请"))["form"]["intent"] == "试用"
    assert check(assistant, conversation_with(assistant, "Is it priceless?"))["ask"] is False  # whole words only


def test_after_a_number_of_answers_and_on_a_handoff_request(assistant):
    lead_services.lead_capture_save(assistant=assistant, triggers=["answers", "handoff"], after_answers=2)
    conversation = conversation_with(assistant, "One?")
    assert check(assistant, conversation)["ask"] is False
    Message.objects.create(conversation=conversation, role="user", text="Two?")
    Message.objects.create(conversation=conversation, role="assistant", text="Second answer.")
    assert check(assistant, conversation)["form"]["trigger"] == "answers"
    other = conversation_with(assistant, "Hello?")
    assert check(assistant, other, handoff=True)["form"]["trigger"] == "handoff"


def test_a_conversation_that_was_not_asked_cannot_leave_a_lead(assistant):
    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"], consent_text="")
    conversation = conversation_with(assistant, "Where are you?")  # no buying intent: not asked
    assert check(assistant, conversation)["ask"] is False
    response = post(assistant, "embed_lead", {"conversation_id": conversation.pk, "fields": {"email": "a@b.co"}})
    assert response.status_code == 409 and not Lead.objects.exists()


def test_another_visitors_conversation_is_not_asked_nor_answered(assistant):
    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"])
    conversation = conversation_with(assistant, "Pricing?", token="someone-else" * 3)
    assert check(assistant, conversation)["ask"] is False
    response = post(assistant, "embed_lead", {"conversation_id": conversation.pk, "fields": {"email": "a@b.co"}})
    assert response.status_code == 404 and not Lead.objects.exists()


def test_bad_values_are_refused_at_their_field_and_nothing_is_stored(assistant):
    lead_services.lead_capture_save(
        assistant=assistant,
        triggers=["intent"],
        consent_text="You may contact me.",
        fields={"name": "required", "email": "required", "phone": "optional", "company": "off"},
        custom_fields=[{"key": "team_size", "label": "Team size", "required": True}],
    )
    conversation = conversation_with(assistant, "Pricing please")
    check(assistant, conversation)
    response = post(
        assistant,
        "embed_lead",
        {"conversation_id": conversation.pk, "fields": {"name": "Ada", "email": "ada@", "phone": "call me"}},
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors == {
        "email": ["Enter a valid email address, e.g. name@example.com."],
        "phone": ["Enter a phone number of 7 to 15 digits, e.g. +33 6 12 34 56 78."],
        "custom_team_size": ["Team size is required."],
        "consent": ["Please tick the box to agree to be contacted."],
    }
    assert (
        post(assistant, "embed_lead", {"conversation_id": conversation.pk, "fields": {"phone": "123"}}).status_code
        == 400
    )
    assert not Lead.objects.exists()


def test_a_valid_lead_is_stored_with_its_consent_and_score(assistant):
    lead_services.lead_capture_save(
        assistant=assistant,
        triggers=["intent"],
        consent_text="You may contact me.",
        fields={"name": "optional", "email": "required", "phone": "optional", "company": "optional"},
    )
    conversation = conversation_with(assistant, "Hi", "How much is the pro plan? Any free trial?")
    check(assistant, conversation)
    payload = {
        "conversation_id": conversation.pk,
        "fields": {
            "name": " <img src=x onerror=alert(1)> ",
            "email": "ada@example.com",
            "phone": "+33 6 12 34 56 78",
            "company": "=cmd",
        },
        "consent": True,
        "page_url": "https://shop.test/pricing",
    }
    response = post(assistant, "embed_lead", payload)
    assert response.status_code == 201, response.content
    lead = Lead.objects.get()
    assert lead.name == "<img src=x onerror=alert(1)>" and lead.phone == "+33 6 12 34 56 78" and lead.company == "=cmd"
    assert lead.consent_text == "You may contact me." and lead.consent_at is not None
    assert lead.trigger == "intent" and lead.intent == "how much" and lead.page_url == "https://shop.test/pricing"
    assert lead.team_id == assistant.team_id and lead.status == "new"
    parts = lead.score_parts
    assert parts["intent"] == {"points": 35, "max": 35, "why": "how much, trial, free trial"}  # 20 + 8 + 8, capped
    assert parts["engagement"] == {"points": 10, "max": 25, "why": "2 questions"}
    assert parts["completeness"]["points"] == 25 and parts["answered"]["points"] == 15
    assert lead.score == sum(p["points"] for p in parts.values()) == min(100, lead.score)

    payload["fields"]["company"] = "Analytical Engines"  # sent again: the same lead, updated
    assert post(assistant, "embed_lead", payload).status_code == 201
    assert Lead.objects.get().company == "Analytical Engines"


def test_declining_stops_the_asking(assistant):
    lead_services.lead_capture_save(assistant=assistant, triggers=["intent", "answers"], after_answers=1)
    conversation = conversation_with(assistant, "Pricing?")
    assert check(assistant, conversation)["ask"] is True
    assert post(assistant, "embed_lead", {"conversation_id": conversation.pk, "decline": True}).json() == {
        "declined": True
    }
    assert LeadPrompt.objects.get().declined_at is not None
    Message.objects.create(conversation=conversation, role="user", text="A quote then?")
    assert check(assistant, conversation)["ask"] is False


def test_a_flood_from_one_visitor_is_rate_limited(assistant, settings):
    settings.LEAD_RATE_VISITOR = 2
    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"], consent_text="")
    conversation = conversation_with(assistant, "Pricing?")
    check(assistant, conversation)
    statuses = [
        post(assistant, "embed_lead", {"conversation_id": conversation.pk, "fields": {"email": "x"}}).status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_the_score_parts():
    cold = scoring.score(intents=[], handoff=False, questions=1, answers=1, unanswered=1, contact={"email": "a@b.co"})
    assert cold["score"] == 0 + 5 + 10 + 0
    hot = scoring.score(
        intents=["pricing", "demo", "quote"],
        handoff=False,
        questions=9,
        answers=9,
        unanswered=0,
        contact={"email": "a@b.co", "phone": "1234567", "name": "A", "company": "B"},
    )
    assert hot["score"] == 35 + 25 + 25 + 15 == 100
    assert (
        scoring.score(intents=[], handoff=True, questions=0, answers=0, unanswered=0, contact={})["parts"]["intent"][
            "points"
        ]
        == 25
    )


def test_the_widget_sends_its_visitor_in_a_header_and_the_log_flags_the_lead(assistant):
    """In a third-party iframe the cookie is withheld: the widget sends the visitor's token in a header."""
    from assistants.selectors import conversation_log

    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"], consent_text="")
    conversation = conversation_with(assistant, "A quote for 30 seats?", token="w" * 32)
    headers = {"X-Chatsite-Visitor": "w" * 32}
    client = Client()
    url = reverse("embed_lead_check", args=[assistant.public_key])
    answer = client.post(url, {"conversation_id": conversation.pk}, content_type="application/json", headers=headers)
    assert answer.json()["form"]["intent"] == "quote"
    response = client.post(
        reverse("embed_lead", args=[assistant.public_key]),
        {"conversation_id": conversation.pk, "fields": {"email": "w@example.com"}},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201 and Lead.objects.get().consent_at is None  # no consent asked
    log = conversation_log(conversations=Conversation.objects.filter(assistant=assistant), flags=["lead"])
    assert [c.pk for c in log] == [conversation.pk]
