"""GET /api/v1/assistants/<id>/conversations/export: every message, streamed as JSONL or CSV."""

import csv
import io
import json
from datetime import timedelta

import pytest

from assistants.models import Conversation, Message
from tests.assistants.api.conftest import assert_error
from tests.factories import make_assistant, make_team

pytestmark = pytest.mark.django_db

CITATION = {
    "n": 1,
    "title": "Pricing",
    "section": "Plans",
    "url": "https://docs.example.com/pricing#plans",
    "chunk_id": 7,
}


@pytest.fixture
def conversations(assistant):
    """Two conversations of two turns each (the second on a page), the second a day newer."""
    first = Conversation.objects.create(assistant=assistant, visitor_token="a" * 30)
    second = Conversation.objects.create(assistant=assistant, visitor_token="b" * 30, page_url="https://acme.test/help")
    for conversation in (first, second):
        Message.objects.create(conversation=conversation, role="user", text='What does it cost, "roughly"?\nThanks')
        Message.objects.create(
            conversation=conversation, role="assistant", text="From 9 € a month [1].", citations=[CITATION]
        )
    day_later = first.messages.first().created_at + timedelta(days=1)
    Message.objects.filter(conversation=second).update(created_at=day_later)
    return first, second


def export(api, assistant, **params):
    response = api.get(f"/assistants/{assistant.pk}/conversations/export", **params)
    assert response.status_code == 200, response.content[:500]
    assert response.streaming
    return response, b"".join(response.streaming_content).decode()


def test_jsonl_has_one_line_per_message(api, assistant, conversations):
    first, second = conversations
    response, body = export(api, assistant)
    assert response["Content-Type"] == "application/x-ndjson"
    assert f'filename="{assistant.slug}-conversations.jsonl"' in response["Content-Disposition"]
    rows = [json.loads(line) for line in body.splitlines()]
    assert [(row["conversation_id"], row["role"]) for row in rows] == [
        (first.pk, "user"),
        (first.pk, "assistant"),
        (second.pk, "user"),
        (second.pk, "assistant"),
    ]
    assert set(rows[0]) == {"conversation_id", "created_at", "role", "text", "citations", "page_url"}
    assert rows[0]["text"] == 'What does it cost, "roughly"?\nThanks' and rows[0]["citations"] == []
    assert rows[1]["citations"] == [CITATION] and rows[1]["text"] == "From 9 € a month [1]."
    assert rows[2]["page_url"] == "https://acme.test/help"


def test_csv_has_a_header_and_one_row_per_message(api, assistant, conversations):
    response, body = export(api, assistant, format="csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 4
    assert rows[0]["text"] == 'What does it cost, "roughly"?\nThanks'  # quoting and newlines survive
    assert json.loads(rows[1]["citations"]) == [CITATION]
    assert rows[3]["page_url"] == "https://acme.test/help" and rows[3]["role"] == "assistant"


def test_since_and_until_bound_the_messages(api, assistant, conversations):
    first, second = conversations
    boundary = second.messages.first().created_at
    _, newer = export(api, assistant, since=boundary.isoformat())
    assert {json.loads(line)["conversation_id"] for line in newer.splitlines()} == {second.pk}
    _, older = export(api, assistant, until=boundary.isoformat())
    assert {json.loads(line)["conversation_id"] for line in older.splitlines()} == {first.pk}
    _, naive = export(api, assistant, since=boundary.replace(tzinfo=None).isoformat(), format="csv")
    assert len(list(csv.DictReader(io.StringIO(naive)))) == 2  # a naive time is in the site's zone, UTC
    # Python reads offsets up to ±23:59, PostgreSQL only ±15:59: the bound is compared in UTC.
    far_east = (boundary + timedelta(hours=16)).replace(tzinfo=None).isoformat() + "+16:00"
    assert export(api, assistant, until=far_east)[1] == older


def test_an_assistant_without_conversations_exports_nothing(api, assistant):
    assert export(api, assistant)[1] == ""
    assert export(api, assistant, format="csv")[1].splitlines() == [
        "conversation_id,created_at,role,text,citations,page_url"
    ]


def test_bad_parameters_are_refused(api, assistant):
    path = f"/assistants/{assistant.pk}/conversations/export"
    assert assert_error(api.get(path, format="xml"), 400, "invalid_request") == {"parameter": "format"}
    assert assert_error(api.get(path, since="yesterday"), 400, "invalid_request") == {"parameter": "since"}
    assert assert_error(api.get(path, until="2026-13-01T00:00:00"), 400, "invalid_request") == {"parameter": "until"}


def test_another_teams_assistant_is_not_found_and_read_scope_is_needed(api, api_with, team, conversations):
    other = make_assistant(make_team())
    assert_error(api.get(f"/assistants/{other.pk}/conversations/export"), 404, "not_found")
    chat_only = api_with(team, ["chat"])
    assistant = conversations[0].assistant
    assert_error(chat_only.get(f"/assistants/{assistant.pk}/conversations/export"), 403, "insufficient_scope")


def test_csv_cells_never_start_a_spreadsheet_formula(api, assistant):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="c" * 30)
    Message.objects.create(conversation=conversation, role="user", text='=HYPERLINK("http://evil.test","x")')
    Message.objects.create(conversation=conversation, role="user", text="-2+3")
    _, body = export(api, assistant, format="csv")
    texts = [row["text"] for row in csv.DictReader(io.StringIO(body))]
    assert texts == ['\'=HYPERLINK("http://evil.test","x")', "'-2+3"]
    _, raw = export(api, assistant)  # JSONL is data, not a spreadsheet: kept as written
    assert json.loads(raw.splitlines()[0])["text"] == '=HYPERLINK("http://evil.test","x")'
