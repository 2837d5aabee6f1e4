"""The public chat endpoint: conversations belong to the visitor's browser, bad input is refused."""

import json

import pytest
from django.test import AsyncClient, Client

from assistants.answering.extractive import extractive_answer
from assistants.answering.pipeline import cited_hits
from assistants.answering.query_rewrite import retrieval_query
from assistants.models import Conversation, Message
from ingestion.search.hybrid import Hit
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant
from tests.sse import answer_text, ask, citations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def assistant():
    assistant = make_assistant()
    index_pages(
        assistant,
        {"http://docs.test/api-guide/throttling/": (DRF_SITE / "api-guide/throttling/index.html").read_text()},
    )
    return assistant


def test_a_visitor_cannot_continue_someone_elses_conversation(assistant):
    alice, mallory = AsyncClient(), AsyncClient()
    events, _ = ask(assistant.slug, "How do I throttle users?", client=alice)
    alice_conversation = events[0][1]["conversation_id"]
    events, _ = ask(assistant.slug, "and what did they ask?", conversation_id=alice_conversation, client=mallory)
    assert events[0][1]["conversation_id"] != alice_conversation
    assert Message.objects.filter(conversation_id=alice_conversation).count() == 2


def test_a_reload_resumes_the_conversation(assistant):
    browser = Client()
    page = browser.get(f"/a/{assistant.slug}/")
    assert page.status_code == 200 and assistant.greeting in page.content.decode()
    visitor = AsyncClient()
    visitor.cookies = browser.cookies
    events, _ = ask(assistant.slug, "How do I throttle users?", client=visitor)
    resumed = json.loads(browser.get(f"/a/{assistant.slug}/conversation").content)
    assert resumed["conversation_id"] == events[0][1]["conversation_id"]
    assert [m["role"] for m in resumed["messages"]] == ["user", "assistant"]
    assert resumed["messages"][1]["citations"] == citations(events)
    assert json.loads(Client().get(f"/a/{assistant.slug}/conversation").content)["messages"] == []


def test_bad_requests_are_refused_plainly(assistant):
    client = Client()
    url = f"/a/{assistant.slug}/chat"
    assert client.post(url, data="question=hi", content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post(url, data="{not json", content_type="application/json").status_code == 400
    assert client.post(url, data=json.dumps({"question": "   "}), content_type="application/json").status_code == 400
    assert client.get(url).status_code == 405
    assert (
        client.post(
            "/a/no-such-assistant/chat", data=json.dumps({"question": "hi"}), content_type="application/json"
        ).status_code
        == 404
    )
    assert not Conversation.objects.exists()


def test_an_assistant_without_content_says_it_does_not_know():
    empty = make_assistant()
    events, _ = ask(empty.slug, "What are your opening hours?")
    assert "couldn't find" in answer_text(events) and citations(events) == []


def test_the_extractive_answer_quotes_the_passage_that_matches():
    hits = [
        Hit(
            1,
            1,
            "Cats sleep a lot. The API rate for anonymous users is set by AnonRateThrottle. Dogs bark.",
            ["Throttling"],
            "anon",
            "http://d.test/t/",
            "Throttling",
        ),
        Hit(2, 2, "Pagination splits results.", ["Pagination"], "", "http://d.test/p/", "Pagination"),
    ]
    answer = extractive_answer("What is the rate for anonymous users?", hits)
    assert "AnonRateThrottle" in answer and "[1]" in answer and "[2]" in answer
    cited = cited_hits(answer + " [7]", hits)
    assert [c["n"] for c in cited] == [1, 2] and cited[0]["url"] == "http://d.test/t/#anon"


def test_a_short_follow_up_searches_with_the_question_it_follows():
    history = [Message(role="user", text="How do I throttle anonymous users?"), Message(role="assistant", text="…")]
    assert retrieval_query("and per user?", history) == "How do I throttle anonymous users? and per user?"
    assert retrieval_query("How do I paginate a list of results?", history) == "How do I paginate a list of results?"
