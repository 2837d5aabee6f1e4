"""Asking through the API: JSON or the public chat's Server-Sent Events, answers cited, conversations listed."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from assistants.api.keys import api_key_create
from assistants.models import Conversation, Message
from tests.assistants.api.conftest import assert_error
from tests.assistants.api.contract import response_schema, schema_errors, served_document
from tests.factories import index_pages
from tests.sse import answer_text, citations, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

PAGE_URL = "https://docs.acme.test/opening-hours/"
PAGE = """<html><head><title>Opening hours</title></head><body><main><h1>Opening hours</h1>
<p>The Acme help desk is open from 8 am to 6 pm, Monday to Friday. On Saturdays the desk opens at 10 am.</p>
<p>Outside opening hours, write to help@acme.test and we answer the next working day.</p></main></body></html>"""


@pytest.fixture
def indexed(assistant):
    index_pages(assistant, {PAGE_URL: PAGE})
    return assistant


def test_a_json_answer_cites_the_page(api, key, indexed):
    response = api.post(f"/assistants/{indexed.pk}/chat", {"question": "When is the help desk open on Saturdays?"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"conversation_id", "answer", "citations", "message_id"}
    assert "10 am" in body["answer"] and "[1]" in body["answer"]
    assert body["citations"][0]["url"].startswith(PAGE_URL)
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.visitor_token == f"api:{key[0].prefix}"
    assert Message.objects.get(pk=body["message_id"]).citations == body["citations"]

    follow_up = api.post(
        f"/assistants/{indexed.pk}/chat", {"question": "And on weekdays?", "conversation_id": conversation.pk}
    ).json()
    assert follow_up["conversation_id"] == conversation.pk and conversation.messages.count() == 4
    listed = api.get(f"/assistants/{indexed.pk}/conversations").json()["data"]
    assert [c["id"] for c in listed] == [conversation.pk]


def test_a_question_with_nul_characters_is_answered_without_them(api, indexed):
    # Found by the fuzz test: PostgreSQL's text cannot hold NUL, and the question was stored as sent.
    response = api.post(
        f"/assistants/{indexed.pk}/chat", {"question": "When is the help desk open\u0000 on Saturdays?"}
    )
    assert response.status_code == 200, response.content
    question = Message.objects.filter(role=Message.Role.USER).get()
    assert question.text == "When is the help desk open on Saturdays?" and "10 am" in response.json()["answer"]


def test_a_streamed_answer_is_the_public_chats_events(key, indexed):
    async def ask():
        response = await AsyncClient().post(
            f"/api/v1/assistants/{indexed.pk}/chat",
            data=json.dumps({"question": "When is the help desk open on Saturdays?", "stream": True}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key[1]}"},
        )
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        return b"".join([chunk async for chunk in response.streaming_content])

    body = async_to_sync(ask)()
    events = parse_sse(body)
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["citations", "done"] and "token" in names
    # Each event matches the document's per-event schema (what schemathesis checks too).
    document = served_document()
    schema = response_schema(document, "post", "/assistants/{assistant_id}/chat", 200, "text/event-stream")
    for block in filter(None, body.decode().strip().split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        assert not schema_errors(fields, schema, document), fields
    assert schema_errors({"event": "chunk", "data": "{}"}, schema, document)  # the validator bites
    assert "10 am" in answer_text(events) and citations(events)[0]["url"].startswith(PAGE_URL)
    message = Message.objects.get(pk=events[-1][1]["message_id"])
    assert message.text == answer_text(events) and message.conversation_id == events[0][1]["conversation_id"]


def test_a_key_cannot_continue_another_keys_conversation(api, team, indexed):
    other_key = api_key_create(team=team, name="other", scopes=["chat"])[0]
    theirs = Conversation.objects.create(assistant=indexed, visitor_token=f"api:{other_key.prefix}")
    response = api.post(f"/assistants/{indexed.pk}/chat", {"question": "hi", "conversation_id": theirs.pk})
    assert_error(response, 404, "not_found")
    assert Conversation.objects.count() == 1 and not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "question"),
        ({"question": "  "}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({"question": "hi", "stream": "yes"}, "stream"),
        ({"question": "hi", "conversation_id": "7"}, "conversation_id"),
    ],
)
def test_bad_questions_are_refused(api, assistant, body, field):
    assert field in assert_error(api.post(f"/assistants/{assistant.pk}/chat", body), 400, "validation_failed")
    assert not Conversation.objects.exists()
