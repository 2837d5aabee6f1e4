"""Assistants, sources and conversations through the API: the same rules as the dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assistants.models import Assistant, Conversation, Message
from ingestion.models import CrawlRun, EmbeddingSpace, Source
from tests.assistants.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_assistant_create_read_update_delete(api, team):
    created = api.post(
        "/assistants", {"name": "Docs Bot", "allowed_domains": ["WWW.Example.com"], "primary_color": "#112233"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assistant = Assistant.objects.get(pk=body["id"])
    assert assistant.team == team and assistant.spaces.get().status == "active"
    assert body["allowed_domains"] == ["www.example.com"] and body["greeting"] == assistant.greeting
    assert api.get(f"/assistants/{assistant.pk}").json() == body

    updated = api.patch(f"/assistants/{assistant.pk}", {"greeting": "Hello!"}).json()
    assert updated == body | {"greeting": "Hello!"}

    assert api.delete(f"/assistants/{assistant.pk}").status_code == 204
    assert not Assistant.objects.filter(pk=assistant.pk).exists() and not EmbeddingSpace.objects.exists()
    assert_error(api.get(f"/assistants/{assistant.pk}"), 404, "not_found")


def test_assistant_fields_are_validated_like_the_form(api, assistant):
    details = assert_error(api.post("/assistants", {"greeting": "no name"}), 400, "validation_failed")
    assert list(details) == ["name"]
    details = assert_error(
        api.patch(f"/assistants/{assistant.pk}", {"primary_color": "blue", "name": ""}), 400, "validation_failed"
    )
    assert set(details) == {"primary_color", "name"}
    details = assert_error(
        api.patch(f"/assistants/{assistant.pk}", {"allowed_domains": "a.com"}), 400, "validation_failed"
    )
    assert list(details) == ["allowed_domains"]
    details = assert_error(api.patch(f"/assistants/{assistant.pk}", {"slug": "mine"}), 400, "invalid_request")
    assert list(details) == ["slug"]
    assert Assistant.objects.get(pk=assistant.pk).name == "Acme Help"


def test_branding_answering_and_access_code_through_the_api(api, assistant):
    from django.contrib.auth.hashers import check_password

    changes = {
        "logo_url": "https://cdn.example.com/logo.png",
        "launcher_position": "left",
        "theme": "dark",
        "suggested_questions": ["  How do   I pay? ", "Where is my order?"],
        "show_powered_by": False,
        "language": "fr",
        "llm_provider": "anthropic",
        "llm_model": "claude-3-5-haiku-latest",
    }
    body = api.patch(f"/assistants/{assistant.pk}", {**changes, "access_code": "team-only"}).json()
    assert body | {"suggested_questions": changes["suggested_questions"]} == body | changes
    assert body["suggested_questions"] == ["How do I pay?", "Where is my order?"] and body["internal"] is True
    assert "access_code" not in body and "access_code_hash" not in body
    assistant.refresh_from_db()
    assert check_password("team-only", assistant.access_code_hash) and assistant.theme == "dark"

    assert api.patch(f"/assistants/{assistant.pk}", {"greeting": "Hi"}).json()["internal"] is True  # absent: kept
    assert api.patch(f"/assistants/{assistant.pk}", {"access_code": None}).json()["internal"] is False

    # The typed contract first (shapes, choices, lengths: every such error at once), then the form's rules.
    details = assert_error(
        api.patch(
            f"/assistants/{assistant.pk}",
            {
                "logo_url": "javascript:alert(1)",
                "theme": "neon",
                "suggested_questions": "one question",
                "reranker_model": "/no/such/reranker",
                "access_code": "ab",
            },
        ),
        400,
        "validation_failed",
    )
    assert set(details) == {"suggested_questions", "theme", "access_code"}
    details = assert_error(
        api.patch(
            f"/assistants/{assistant.pk}",
            {"logo_url": "javascript:alert(1)", "theme": "light", "reranker_model": "/no/such/reranker"},
        ),
        400,
        "validation_failed",
    )
    assert set(details) == {"logo_url", "reranker_model"}
    assistant.refresh_from_db()
    assert assistant.theme == "dark" and not assistant.reranker_model


def test_a_retried_create_returns_the_first_response_and_creates_nothing(api, team):
    headers = {"Idempotency-Key": "create-docs-bot-1"}
    first = api.post("/assistants", {"name": "Docs Bot"}, headers=headers)
    again = api.post("/assistants", {"name": "Docs Bot"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Assistant.objects.filter(team=team).count() == 1
    assert_error(api.post("/assistants", {"name": "Other Bot"}, headers=headers), 400, "invalid_request")
    assert api.post("/assistants", {"name": "Docs Bot"}, headers={"Idempotency-Key": "another"}).status_code == 201
    assert Assistant.objects.filter(team=team).count() == 2


def test_render_javascript_must_be_a_boolean(api, assistant):
    response = api.post(
        f"/assistants/{assistant.pk}/sources", {"url": "https://docs.example.com/", "render_javascript": "yes"}
    )
    assert_error(response, 400, "validation_failed")
    assert not Source.objects.filter(assistant=assistant).exists()


def test_a_refused_create_does_not_use_up_its_idempotency_key(api, team):
    headers = {"Idempotency-Key": "retry-after-fixing"}
    assert_error(api.post("/assistants", {"name": ""}, headers=headers), 400, "validation_failed")
    assert api.post("/assistants", {"name": "Fixed"}, headers=headers).status_code == 201


def test_adding_a_website_queues_a_crawl(api, assistant):
    response = api.post(
        f"/assistants/{assistant.pk}/sources",
        {
            "kind": "website",
            "url": "https://docs.example.com/",
            "max_pages": 10,
            "max_depth": 2,
            "render_javascript": True,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    source = Source.objects.get(pk=body["id"], assistant=assistant)
    assert source.settings == {"max_pages": 10, "max_depth": 2, "render_javascript": True}
    assert body["settings"] == source.settings
    run = CrawlRun.objects.get(source=source)
    assert run.status == "queued" and body["status"] == "queued"
    assert body["progress"]["run"]["id"] == run.pk and body["progress"]["documents"]["total"] == 0
    assert api.get(f"/sources/{source.pk}").json() == body
    assert [s["id"] for s in api.get(f"/assistants/{assistant.pk}/sources").json()["data"]] == [source.pk]

    crawl = api.post(f"/sources/{source.pk}/crawl")
    assert crawl.status_code == 202 and crawl.json()["progress"]["run"]["id"] == run.pk  # already under way
    report = {"failed": [{"url": "https://docs.example.com/x", "reason": "HTTP 500"}]}
    CrawlRun.objects.filter(pk=run.pk).update(status="done", report=report)
    assert api.get(f"/sources/{source.pk}").json()["progress"]["run"]["report"] == report  # the crawl report
    assert api.post(f"/sources/{source.pk}/crawl").json()["progress"]["run"]["id"] != run.pk
    assert CrawlRun.objects.filter(source=source).count() == 2


def test_a_retried_source_create_queues_one_crawl(api, assistant, settings):
    headers = {"Idempotency-Key": "add-docs"}
    for _ in range(2):
        assert (
            api.post(
                f"/assistants/{assistant.pk}/sources", {"url": "https://docs.example.com/"}, headers=headers
            ).status_code
            == 201
        )
    assert Source.objects.count() == 1 and CrawlRun.objects.count() == 1
    # Unsent limits are the server's crawl defaults, as in the dashboard's form and the document.
    assert Source.objects.get().settings == {
        "max_pages": settings.CRAWL_MAX_PAGES,
        "max_depth": settings.CRAWL_MAX_DEPTH,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:6379/"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"url": "https://docs.example.com/", "max_pages": 0}, "max_pages"),
        ({"kind": "document", "url": "https://docs.example.com/"}, "kind"),
        ({}, "url"),
    ],
)
def test_a_bad_source_is_refused(api, assistant, body, field):
    details = assert_error(api.post(f"/assistants/{assistant.pk}/sources", body), 400, "validation_failed")
    assert field in details
    assert not Source.objects.exists()


def test_conversations_page_by_cursor_without_repeats(api, assistant):
    start = timezone.now()
    conversations = [Conversation.objects.create(assistant=assistant, visitor_token=f"v{n:030d}") for n in range(7)]
    # Two share an updated_at: the id breaks the tie.
    for n, conversation in enumerate(conversations):
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=start - timedelta(minutes=min(n, 5)))
    expected = [c.pk for c in sorted(conversations, key=lambda c: (min(conversations.index(c), 5), -c.pk))]

    pages, cursor = [], None
    while True:
        body = api.get(
            f"/assistants/{assistant.pk}/conversations", limit=3, **({"cursor": cursor} if cursor else {})
        ).json()
        pages.append([c["id"] for c in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [pk for page in pages for pk in page] == expected


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"cursor": "bm90IGpzb24"},
        {"cursor": "%%%"},
        {"cursor": "¹"},  # a digit to str.isdigit, found by the API fuzzing (it answered 500)
        {"cursor": "9" * 30},
    ],
)
def test_bad_paging_parameters_are_refused(api, assistant, params):
    assert_error(api.get(f"/assistants/{assistant.pk}/conversations", **params), 400, "invalid_request")


def test_a_conversation_with_its_messages(api, assistant):
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 30, page_url="https://example.com/p"
    )
    Message.objects.create(conversation=conversation, role="user", text="Hi?")
    Message.objects.create(
        conversation=conversation, role="assistant", text="Hello [1]", citations=[{"n": 1, "title": "T", "url": "u"}]
    )
    body = api.get(f"/conversations/{conversation.pk}").json()
    assert body["id"] == conversation.pk and body["page_url"] == "https://example.com/p"
    assert [(m["role"], m["text"]) for m in body["messages"]] == [("user", "Hi?"), ("assistant", "Hello [1]")]
    assert body["messages"][1]["citations"] == [{"n": 1, "title": "T", "url": "u"}]


def test_conversations_are_filtered_by_activity_gaps_and_ratings(api, assistant):
    from assistants.models import Feedback

    now = timezone.now()
    old, gap, liked = (Conversation.objects.create(assistant=assistant, visitor_token=f"v{n}" * 12) for n in range(3))
    Conversation.objects.filter(pk=old.pk).update(updated_at=now - timedelta(days=40))
    Message.objects.create(conversation=gap, role="assistant", text="I don't know.", unanswered=True)
    answer = Message.objects.create(conversation=liked, role="assistant", text="Yes [1].")
    Feedback.objects.create(conversation=liked, message=answer, kind="rating", rating=1)

    def ids(**params):
        response = api.get(f"/assistants/{assistant.pk}/conversations", **params)
        assert response.status_code == 200, response.content
        return {c["id"] for c in response.json()["data"]}

    assert ids() == {old.pk, gap.pk, liked.pk}
    assert ids(since=(now - timedelta(days=1)).isoformat()) == {gap.pk, liked.pk}
    assert ids(until=(now - timedelta(days=1)).isoformat()) == {old.pk}
    assert ids(unanswered="true") == {gap.pk} and ids(unanswered="false") == {old.pk, liked.pk}
    assert ids(rating="up") == {liked.pk} and ids(rating="down") == set()
    for params in ({"unanswered": "yes"}, {"rating": "5"}, {"since": "last week"}):
        details = assert_error(api.get(f"/assistants/{assistant.pk}/conversations", **params), 400, "invalid_request")
        assert details == {"parameter": next(iter(params))}
