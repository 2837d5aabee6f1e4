"""Every route, given another team's ids, answers 404 in the error shape and changes nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from assistants.models import Assistant, Conversation, Lead, Message
from ingestion.models import CrawlRun, Document, Source
from tests.assistants.api.conftest import assert_error
from tests.factories import make_assistant, make_team

pytestmark = pytest.mark.django_db

MULTIPART = "multipart: a file upload"  # sent as a form with one file, not JSON

ROUTES = [
    ("GET", "/assistants/{assistant}", None),
    ("PATCH", "/assistants/{assistant}", {"name": "Taken over"}),
    ("DELETE", "/assistants/{assistant}", None),
    ("GET", "/assistants/{assistant}/sources", None),
    ("POST", "/assistants/{assistant}/sources", {"url": "https://docs.example.com/"}),
    ("GET", "/assistants/{assistant}/conversations", None),
    ("POST", "/assistants/{assistant}/chat", {"question": "What is secret?"}),
    ("POST", "/assistants/{own_assistant}/chat", {"question": "What is secret?", "conversation_id": "{conversation}"}),
    ("GET", "/sources/{source}", None),
    ("PATCH", "/sources/{source}", {"exclude": ["/taken/*"]}),
    ("DELETE", "/sources/{source}", None),
    ("POST", "/sources/{source}/crawl", None),
    ("POST", "/sources/{source}/pause", None),
    ("POST", "/sources/{source}/resume", None),
    ("POST", "/sources/{source}/cancel", None),
    ("GET", "/assistants/{assistant}/conversations/export", None),
    ("GET", "/conversations/{conversation}", None),
    ("GET", "/assistants/{assistant}/documents", None),
    ("GET", "/assistants/{assistant}/feedback", None),
    ("POST", "/assistants/{assistant}/qa", {"question": "Q?", "answer": "A."}),
    ("POST", "/assistants/{assistant}/documents", MULTIPART),
    ("POST", "/assistants/{assistant}/documents/url", {"url": "https://example.com/guide.pdf"}),
    ("GET", "/documents/{document}", None),
    ("DELETE", "/documents/{document}", None),
    ("POST", "/documents/{document}/reindex", None),
    ("GET", "/assistants/{assistant}/analytics/overview", None),
    ("GET", "/assistants/{assistant}/analytics/topics", None),
    ("GET", "/assistants/{assistant}/analytics/gaps", None),
    ("GET", "/assistants/{assistant}/analytics/sources", None),
    ("GET", "/leads/{lead}", None),
    ("PATCH", "/leads/{lead}", {"status": "closed", "notes": "taken over"}),
]


@pytest.fixture
def theirs():
    assistant = make_assistant(make_team(), name="Their Secret Assistant")
    source = Source.objects.create(assistant=assistant, url="https://secret.example.com/", name="Their secret source")
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 30)
    Message.objects.create(conversation=conversation, role="user", text="their secret question")
    document = Document.objects.create(source=source, url="https://secret.example.com/a", title="Their secret page")
    lead = Lead.objects.create(
        team=assistant.team, assistant=assistant, conversation=conversation, name="Their secret lead"
    )
    return {
        "assistant": assistant.pk,
        "source": source.pk,
        "conversation": conversation.pk,
        "document": document.pk,
        "lead": lead.pk,
    }


def _fill(value, ids):
    if isinstance(value, dict):
        return {name: _fill(item, ids) for name, item in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value.format(**ids) if isinstance(value, str) else value


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p} {b or ''}" for m, p, b in ROUTES])
def test_another_teams_ids_are_not_found(api, assistant, theirs, method, path, body):
    ids = theirs | {"own_assistant": assistant.pk}
    before = (
        list(Assistant.objects.values()),
        list(Source.objects.values()),
        list(Conversation.objects.values()),
        list(Document.objects.values()),
        list(Lead.objects.values()),
        Message.objects.count(),
        CrawlRun.objects.count(),
    )
    if body == MULTIPART:
        upload = SimpleUploadedFile("secret.md", b"their secret upload")
        response = api.client.post(f"/api/v1{_fill(path, ids)}", {"file": [upload]}, headers=api.headers)
    else:
        response = api.request(method, _fill(path, ids), _fill(body, ids))
    assert_error(response, 404, "not_found")
    assert b"secret" not in response.content.lower()
    after = (
        list(Assistant.objects.values()),
        list(Source.objects.values()),
        list(Conversation.objects.values()),
        list(Document.objects.values()),
        list(Lead.objects.values()),
        Message.objects.count(),
        CrawlRun.objects.count(),
    )
    assert after == before


def test_lists_hold_only_the_keys_team(api, assistant, theirs):
    assert [a["id"] for a in api.get("/assistants").json()["data"]] == [assistant.pk]
    assert api.get("/leads").json()["data"] == []


def test_every_operation_that_names_an_object_is_walked(client):
    """A new operation with an id in its path must join ROUTES (another team's ids: 404)."""
    import re

    document = client.get("/api/v1/openapi.json").json()
    named = {
        (method.upper(), re.sub(r"\{(\w+?)_id\}", r"{\1}", path))
        for path, item in document["paths"].items()
        for method in item
        if "{" in path
    }
    walked = {(method, path.replace("{own_assistant}", "{assistant}")) for method, path, _ in ROUTES}
    assert named - walked == set(), "operations on another team's objects not walked"


TEAM_ROUTES = [
    "/analytics/overview",
    "/analytics/sources",
    "/analytics/topics",
    "/analytics/gaps",
    "/analytics/lead-quality",
]


@pytest.mark.parametrize("path", TEAM_ROUTES)
def test_whole_team_routes_count_only_the_keys_team_and_need_the_read_scope(team, path):
    """A team-wide route (no id to refuse) counts the key's team's assistants alone, and asks for the
    ``read`` scope like every read."""
    import datetime as dt

    from django.utils.timezone import now

    from assistants.analytics import services
    from assistants.api.keys import api_key_create
    from assistants.models import ContentGap, Lead, Topic, TopicBuild
    from tests.assistants.api.conftest import Api

    mine, theirs = make_assistant(team, name="Mine"), make_assistant(make_team(), name="Their Secret Assistant")
    today = dt.datetime.now(dt.UTC).date()
    for assistant, questions in ((mine, 1), (theirs, 3)):
        conversation = Conversation.objects.create(assistant=assistant, visitor_token=f"v{assistant.pk}" * 8)
        for n in range(questions):
            Message.objects.create(conversation=conversation, role="user", text=f"secret question {n}")
            Message.objects.create(
                conversation=conversation,
                role="assistant",
                text="secret answer",
                citations=[{"url": f"https://secret.example.com/{assistant.pk}", "title": "Secret page"}],
            )
        # A topic build, a gap and a lead of each team's assistant.
        build = TopicBuild.objects.create(
            assistant=assistant, start=today, end=today, status=TopicBuild.Status.DONE, finished_at=now()
        )
        Topic.objects.create(build=build, assistant=assistant, label="secret topic", questions=questions)
        ContentGap.objects.create(assistant=assistant, label="secret gap", kind="no_page", visitors=questions)
        Lead.objects.create(
            team=assistant.team,
            assistant=assistant,
            score=50,
            page_url=f"https://secret.example.com/{assistant.pk}",
            conversation=conversation,
        )
    services.rollups_compute(start=today - dt.timedelta(days=1), end=today)
    reader = Api(api_key_create(team=team, name="reader", scopes=["read"])[1])
    body = reader.get(path).json()
    if path.endswith("overview"):
        assert body["team_id"] == team.pk and body["assistants"] == 1
        assert {m["key"]: m["value"] for m in body["metrics"]}["questions"] == 1
    elif path.endswith(("topics", "gaps")):
        assert [row["assistant_id"] for row in body["data"]] == [mine.pk]
        assert [b["assistant_id"] for b in body.get("builds", [{"assistant_id": mine.pk}])] == [mine.pk]
    elif path.endswith("lead-quality"):
        assert body["total"] == 1 and [row["url"] for row in body["data"]] == [f"https://secret.example.com/{mine.pk}"]
    else:
        assert [row["url"] for row in body["data"]] == [f"https://secret.example.com/{mine.pk}"]
    chat_only = Api(api_key_create(team=team, name="chat", scopes=["chat"])[1])
    assert assert_error(chat_only.get(path), 403, "insufficient_scope")["required"] == "read"
    assert_error(Api(None).get(path), 401, "unauthorized")
