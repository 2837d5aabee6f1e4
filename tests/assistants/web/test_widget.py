"""The widget's server side: the loader, the framed chat page, ratings and contact details."""

import json

import pytest
from django.test import Client

from assistants.models import Conversation, Feedback, Message
from assistants.web.widget import allowed_sources
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db

TOKEN = "v" * 32


@pytest.fixture
def assistant():
    return make_assistant()


def answered_conversation(assistant, token=TOKEN):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token=token)
    Message.objects.create(conversation=conversation, role=Message.Role.USER, text="How much?")
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text="**$10** [1]",
        citations=[{"n": 1, "title": "Pricing", "section": "", "url": "https://docs.test/pricing/", "chunk_id": 1}],
    )
    return conversation, answer


def post_json(client, url, payload, token=TOKEN):
    return client.post(url, json.dumps(payload), content_type="application/json", HTTP_COOKIE=f"cs_visitor={token}")


def test_the_loader_is_javascript_with_a_short_cache(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript"
    assert response["Cache-Control"] == "public, max-age=300"
    body = b"".join(response.streaming_content)
    assert b"window.Chatsite" in body and len(body) < 10 * 1024


def test_embed_page_may_be_framed_by_allowed_domains_only(client, assistant):
    assistant.allowed_domains = ["docs.test", "shop.test:8443", "evil.test; script-src *", "x y"]
    assistant.save()
    response = client.get(f"/embed/{assistant.public_key}/")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    csp = response["Content-Security-Policy"]
    assert (
        "frame-ancestors 'self' https://docs.test http://docs.test https://shop.test:8443 http://shop.test:8443" in csp
    )
    assert "evil" not in csp and "script-src 'self';" in csp


def test_without_allowed_domains_only_the_platform_frames_the_chat(client, assistant):
    csp = client.get(f"/embed/{assistant.public_key}/")["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors 'self'")


def test_the_embed_page_shows_no_secret(client, assistant):
    assistant.system_prompt = "TOP-SECRET-PROMPT"
    assistant.save()
    html = client.get(f"/embed/{assistant.public_key}/").content.decode()
    assert "TOP-SECRET-PROMPT" not in html
    assert assistant.name in html and "data-embed" in html


def test_unknown_public_key_is_404(client):
    assert client.get("/embed/pk_nope/").status_code == 404


def test_allowed_sources_reject_anything_but_hosts():
    assert allowed_sources(["Docs.Test", "*.docs.test", "'self'", "https://x.test", "a;b"]) == [
        "https://docs.test",
        "http://docs.test",
        "https://*.docs.test",
        "http://*.docs.test",
    ]


def test_the_conversation_comes_back_with_html_ids_and_ratings(assistant):
    conversation, answer = answered_conversation(assistant)
    Feedback.objects.create(conversation=conversation, message=answer, kind=Feedback.Kind.RATING, rating=-1)
    data = Client(HTTP_COOKIE=f"cs_visitor={TOKEN}").get(f"/embed/{assistant.public_key}/conversation").json()
    assert data["conversation_id"] == conversation.pk
    question, reply = data["messages"]
    assert question == {"id": question["id"], "role": "user", "text": "How much?", "citations": []}
    assert reply["id"] == answer.pk and reply["rating"] == -1
    assert "<strong>$10</strong>" in reply["html"] and 'class="cite"' in reply["html"]


def test_another_visitor_gets_no_conversation(assistant):
    answered_conversation(assistant)
    data = Client(HTTP_COOKIE=f"cs_visitor={'w' * 32}").get(f"/embed/{assistant.public_key}/conversation").json()
    assert data == {"conversation_id": None, "messages": []}


def test_a_rating_is_stored_and_updated_with_a_comment(client, assistant):
    _, answer = answered_conversation(assistant)
    url = f"/embed/{assistant.public_key}/feedback"
    assert post_json(client, url, {"message_id": answer.pk, "rating": 1}).status_code == 200
    assert (
        post_json(client, url, {"message_id": answer.pk, "rating": -1, "comment": " wrong price "}).status_code == 200
    )
    feedback = Feedback.objects.get()
    assert (feedback.kind, feedback.rating, feedback.comment, feedback.message_id) == (
        "rating",
        -1,
        "wrong price",
        answer.pk,
    )


@pytest.mark.parametrize("rating", [0, 2, True, "1", None])
def test_a_rating_is_one_or_minus_one(client, assistant, rating):
    _, answer = answered_conversation(assistant)
    response = post_json(client, f"/embed/{assistant.public_key}/feedback", {"message_id": answer.pk, "rating": rating})
    assert response.status_code == 400


def test_only_the_visitors_own_answers_can_be_rated(client, assistant):
    _, answer = answered_conversation(assistant)
    other = make_assistant()
    assert (
        post_json(
            client, f"/embed/{assistant.public_key}/feedback", {"message_id": answer.pk, "rating": 1}, token="w" * 32
        ).status_code
        == 404
    )
    assert (
        post_json(client, f"/embed/{other.public_key}/feedback", {"message_id": answer.pk, "rating": 1}).status_code
        == 404
    )
    assert not Feedback.objects.exists()


def test_feedback_needs_json(client, assistant):
    _, answer = answered_conversation(assistant)
    response = client.post(
        f"/embed/{assistant.public_key}/feedback",
        {"message_id": answer.pk, "rating": 1},
        HTTP_COOKIE=f"cs_visitor={TOKEN}",
    )
    assert response.status_code == 400


def test_contact_details_are_stored_on_the_conversation(client, assistant):
    conversation, _ = answered_conversation(assistant)
    response = post_json(
        client,
        f"/embed/{assistant.public_key}/contact",
        {
            "conversation_id": conversation.pk,
            "name": "Ada",
            "email": "ada@example.com",
            "message": "Call me",
            "page_url": "https://docs.test/pricing/",
        },
    )
    assert response.status_code == 201 and response.json() == {"conversation_id": conversation.pk}
    feedback = Feedback.objects.get()
    assert feedback.kind == "contact" and feedback.conversation == conversation
    assert feedback.details == {
        "name": "Ada",
        "email": "ada@example.com",
        "message": "Call me",
        "page_url": "https://docs.test/pricing/",
    }


def test_contact_before_any_question_starts_a_conversation(client, assistant):
    response = post_json(client, f"/embed/{assistant.public_key}/contact", {"email": "ada@example.com"})
    assert response.status_code == 201
    assert Conversation.objects.get(pk=response.json()["conversation_id"]).visitor_token == TOKEN


def test_contact_needs_a_valid_email(client, assistant):
    response = post_json(client, f"/embed/{assistant.public_key}/contact", {"name": "Ada", "email": "not-an-email"})
    assert response.status_code == 400 and not Feedback.objects.exists()


def test_the_visitor_header_identifies_the_visitor_without_a_cookie(assistant):
    """The widget's iframe may get no cookie: its token comes in X-Chatsite-Visitor instead."""
    conversation, answer = answered_conversation(assistant)
    client = Client(HTTP_X_CHATSITE_VISITOR=TOKEN)
    assert client.get(f"/embed/{assistant.public_key}/conversation").json()["conversation_id"] == conversation.pk
    response = client.post(
        f"/embed/{assistant.public_key}/feedback",
        {"message_id": answer.pk, "rating": 1},
        content_type="application/json",
    )
    assert response.status_code == 200


def test_the_full_page_runs_the_same_chat_client(client, assistant):
    html = client.get(f"/a/{assistant.slug}/").content.decode()
    assert "js/chat.js" in html and "js/i18n.js" in html and "data-embed" not in html
    assert html.index("js/sse.js") < html.index("js/chat.js")  # the shared SSE parser first
    assert f"/embed/{assistant.public_key}/feedback" in html


def test_nul_characters_from_a_visitor_are_dropped_not_a_server_error(client, assistant):
    # PostgreSQL's text and jsonb cannot hold NUL: found by the API fuzz test on the chat question.
    response = post_json(
        client,
        f"/embed/{assistant.public_key}/contact",
        {
            "name": "A\u0000da",
            "email": "ada@example.com",
            "message": "Call\u0000 me",
            "page_url": "https://docs.test/\u0000",
        },
    )
    assert response.status_code == 201
    assert Feedback.objects.get().details == {
        "name": "Ada",
        "email": "ada@example.com",
        "message": "Call me",
        "page_url": "https://docs.test/",
    }
