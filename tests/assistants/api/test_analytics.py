"""The analytics API: the dashboard's figures per assistant of the key's team, read-only, from the
rollups and the latest topic build, in the API's shapes (checked against the served document)."""

import datetime as dt

import pytest

from assistants.analytics import services
from assistants.api.keys import api_key_create
from assistants.models import ContentGap, GapQuestion, Topic
from tests.assistants.analytics.seed import DAY1, DAY2, P1, P2, seed
from tests.assistants.api.conftest import Api, assert_error
from tests.assistants.api.contract import response_schema, schema_errors, served_document

pytestmark = pytest.mark.django_db

PERIOD = {"start": DAY1.isoformat(), "end": DAY2.isoformat()}


@pytest.fixture
def seeded():
    s = seed()
    services.rollups_compute(start=DAY1 - dt.timedelta(days=5), end=DAY2)
    return s, Api(api_key_create(team=s.team, name="ci", scopes=["read"])[1])


def conforms(response, template: str) -> dict:
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    document = served_document()
    assert not schema_errors(body, response_schema(document, "get", template, 200), document)
    return body


def test_the_overview_has_every_metric_with_the_previous_period(seeded):
    s, api = seeded
    body = conforms(
        api.get(f"/assistants/{s.a.pk}/analytics/overview", **PERIOD), "/assistants/{assistant_id}/analytics/overview"
    )
    assert body["period"] == {"start": "2026-11-10", "end": "2026-11-11", "days": 2}
    assert body["previous_period"] == {"start": "2026-11-08", "end": "2026-11-09", "days": 2}
    values = {m["key"]: m for m in body["metrics"]}
    # Assistant A by hand: 5 conversations, 6 questions, 6 answers of which 4 answered, 1 unanswered,
    # 1 failed; one thumbs up and one down. Assistant B and the other team's count nowhere.
    assert values["conversations"]["value"] == 5 and values["questions"]["value"] == 6
    assert values["answered_rate"]["value"] == pytest.approx(4 / 6)
    assert values["unanswered_rate"]["value"] == pytest.approx(1 / 6)
    assert values["satisfaction"]["value"] == pytest.approx(0.5)
    assert values["conversations"]["previous"] == 0 and values["conversations"]["change"] == 5
    assert values["satisfaction"]["previous"] is None and values["satisfaction"]["change"] is None
    assert values["unanswered_rate"]["formula"].startswith("unanswered ÷ answers")
    assert [(d["day"], d["questions"], d["unanswered"]) for d in body["per_day"]] == [
        ("2026-11-10", 5, 1),
        ("2026-11-11", 1, 0),
    ]
    assert body["top_pages"][0] == {"url": "https://ex.example/pricing", "questions": 3}
    assert {m["model"] for m in body["models"]} == {"openai · gpt-4o-mini", "openai", "extractive"}


def test_the_period_is_checked_at_its_field(seeded):
    s, api = seeded
    path = f"/assistants/{s.a.pk}/analytics/overview"
    assert "end" in assert_error(api.get(path, start="2026-11-11", end="2026-11-10"), 400, "validation_failed")
    assert "end" in assert_error(api.get(path, start="2025-01-01", end="2026-11-10"), 400, "validation_failed")
    assert "start" in assert_error(api.get(path, start="0001-01-01"), 400, "validation_failed")
    assert "end" in assert_error(api.get(path, end="9999-12-31"), 400, "validation_failed")
    assert api.get(path, start="not a date").status_code == 400
    default = api.get(path).json()["period"]
    assert default["days"] == 30 and default["end"] == dt.datetime.now(dt.UTC).date().isoformat()


def test_source_usage_pages_through_the_cited_pages(seeded):
    s, api = seeded
    path = f"/assistants/{s.a.pk}/analytics/sources"
    first = conforms(api.get(path, limit=1, **PERIOD), "/assistants/{assistant_id}/analytics/sources")
    # P1 cited by three answers (one rated up), P2 by two (one rated down).
    assert [(r["url"], r["cited"], r["rated_up"], r["rated_down"]) for r in first["data"]] == [(P1["url"], 3, 1, 0)]
    assert first["never_cited"] == 0 and first["next_cursor"]
    second = api.get(path, limit=1, cursor=first["next_cursor"], **PERIOD).json()
    assert [(r["url"], r["cited"], r["rated_up"], r["rated_down"]) for r in second["data"]] == [(P2["url"], 2, 0, 1)]
    assert second["next_cursor"] is None
    assert_error(api.get(path, cursor="bm90IGEgY3Vyc29y"), 400, "invalid_request")
    assert_error(api.get(path, cursor="WzEsIDJd"), 400, "invalid_request")  # [1, 2]: not [int, str]


def test_topics_of_the_latest_build_most_questions_first(seeded, embedder):
    s, api = seeded
    path = f"/assistants/{s.a.pk}/analytics/topics"
    empty = conforms(api.get(path), "/assistants/{assistant_id}/analytics/topics")
    assert empty == {"build": None, "data": [], "next_cursor": None}
    build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk)
    expected = list(Topic.objects.filter(build=build).order_by("-questions", "-id").values_list("pk", flat=True))
    assert len(expected) >= 3
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = conforms(api.get(path, **params), "/assistants/{assistant_id}/analytics/topics")
        assert body["build"]["id"] == build.pk and body["build"]["questions"] == 6
        seen += [t["id"] for t in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert sum(t.questions for t in Topic.objects.filter(build=build)) == 6


def test_gaps_most_visitors_first_with_their_checks_and_a_status_filter(seeded):
    s, api = seeded
    few = ContentGap.objects.create(assistant=s.a, label="Few?", kind=ContentGap.Kind.NO_PAGE, visitors=1)
    many = ContentGap.objects.create(
        assistant=s.a,
        label="Many?",
        kind=ContentGap.Kind.ANSWER_FAILED,
        visitors=5,
        best_url="https://ex.example/install",
        best_rank=2,
        best_score=0.61,
        status=ContentGap.Status.CLOSED,
    )
    GapQuestion.objects.create(gap=many, text="How do I install it?", answered=True, source_url=P2["url"])
    ContentGap.objects.create(assistant=s.b, label="B's gap?", kind=ContentGap.Kind.NO_PAGE, visitors=9)
    path = f"/assistants/{s.a.pk}/analytics/gaps"
    body = conforms(api.get(path), "/assistants/{assistant_id}/analytics/gaps")
    assert [g["id"] for g in body["data"]] == [many.pk, few.pk]
    assert body["data"][0]["checks"][0]["answered"] is True and body["data"][0]["best_rank"] == 2
    assert [g["id"] for g in api.get(path, status="open").json()["data"]] == [few.pk]
    page = api.get(path, limit=1).json()
    assert [g["id"] for g in page["data"]] == [many.pk]
    assert [g["id"] for g in api.get(path, limit=1, cursor=page["next_cursor"]).json()["data"]] == [few.pk]
    assert api.get(path, status="nonsense").status_code == 400


def test_another_teams_assistant_is_not_found_and_a_key_reads_only_its_team(seeded):
    s, api = seeded
    for tab in ("overview", "topics", "gaps", "sources"):
        details = assert_error(api.get(f"/assistants/{s.other.pk}/analytics/{tab}"), 404, "not_found")
        assert details == {}
    b = api.get(f"/assistants/{s.b.pk}/analytics/overview", **PERIOD).json()
    assert {m["key"]: m["value"] for m in b["metrics"]}["questions"] == 1  # B alone


def test_the_whole_teams_overview_sums_its_assistants_only(seeded):
    s, api = seeded
    body = conforms(api.get("/analytics/overview", **PERIOD), "/analytics/overview")
    assert body["team_id"] == s.team.pk and body["assistants"] == 2
    assert body["period"] == {"start": "2026-11-10", "end": "2026-11-11", "days": 2}
    values = {m["key"]: m for m in body["metrics"]}
    # By hand: A's 5 conversations, 6 questions, 6 answers (4 answered, 1 unanswered, 1 failed) and B's
    # one conversation with one answered question; the other team's counts nowhere.
    assert values["conversations"]["value"] == 6 and values["questions"]["value"] == 7
    assert values["answered_rate"]["value"] == pytest.approx(5 / 7)
    assert values["unanswered_rate"]["value"] == pytest.approx(1 / 7)
    assert values["satisfaction"]["value"] == pytest.approx(0.5)
    assert [(d["day"], d["questions"]) for d in body["per_day"]] == [("2026-11-10", 6), ("2026-11-11", 1)]
    assert "end" in assert_error(
        api.get("/analytics/overview", start="2026-11-11", end="2026-11-10"), 400, "validation_failed"
    )
    sources = conforms(api.get("/analytics/sources", **PERIOD), "/analytics/sources")
    assert [(r["url"], r["cited"]) for r in sources["data"]] == [(P1["url"], 3), (P2["url"], 2)]


def test_the_whole_teams_topics_gaps_and_lead_quality_page_by_cursor(seeded, embedder):
    from assistants.models import Lead

    s, api = seeded
    assert conforms(api.get("/analytics/topics"), "/analytics/topics") == {
        "builds": [],
        "data": [],
        "next_cursor": None,
    }
    builds = []
    for assistant in (s.a, s.b, s.other):
        build = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
        services.topics_build(build_id=build.pk)
        builds.append(build)
    expected = list(
        Topic.objects.filter(build__in=builds[:2]).order_by("-questions", "-id").values_list("pk", "assistant_id")
    )
    assert {a for _, a in expected} == {s.a.pk, s.b.pk}
    seen, cursor = [], None
    while True:
        body = conforms(
            api.get("/analytics/topics", limit=2, **({"cursor": cursor} if cursor else {})), "/analytics/topics"
        )
        assert sorted(b["assistant_id"] for b in body["builds"]) == sorted([s.a.pk, s.b.pk])
        seen += [(t["id"], t["assistant_id"]) for t in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == expected  # both assistants', not the other team's
    # Gaps: both assistants', most visitors first, by status, by cursor.
    ContentGap.objects.all().delete()
    few = ContentGap.objects.create(assistant=s.a, label="Few?", kind=ContentGap.Kind.NO_PAGE, visitors=1)
    many = ContentGap.objects.create(
        assistant=s.b, label="Many?", kind=ContentGap.Kind.NO_PAGE, visitors=5, status=ContentGap.Status.CLOSED
    )
    ContentGap.objects.create(assistant=s.other, label="Theirs?", kind=ContentGap.Kind.NO_PAGE, visitors=9)
    body = conforms(api.get("/analytics/gaps", limit=1), "/analytics/gaps")
    assert [(g["id"], g["assistant_id"]) for g in body["data"]] == [(many.pk, s.b.pk)]
    rest = conforms(api.get("/analytics/gaps", limit=1, cursor=body["next_cursor"]), "/analytics/gaps")
    assert [g["id"] for g in rest["data"]] == [few.pk] and rest["next_cursor"] is None
    assert [g["id"] for g in api.get("/analytics/gaps", status="open").json()["data"]] == [few.pk]
    assert api.get("/analytics/gaps", status="nonsense").status_code == 400
    # Lead quality: by hand, three leads of the team in the period (scores 80, 60, 10), one before it,
    # one of the other team's.
    for assistant, day, score, page in (
        (s.a, DAY1, 80, "https://ex.example/pricing?utm=x"),
        (s.a, DAY2, 60, "https://ex.example/pricing"),
        (s.b, DAY2, 10, "https://ex.example/about#team"),
        (s.a, DAY1 - dt.timedelta(days=1), 30, "https://ex.example/pricing"),
        (s.other, DAY1, 90, "https://secret.example.com/"),
    ):
        lead = Lead.objects.create(team=assistant.team, assistant=assistant, score=score, page_url=page)
        Lead.objects.filter(pk=lead.pk).update(created_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC))
    body = conforms(api.get("/analytics/lead-quality", limit=1, **PERIOD), "/analytics/lead-quality")
    assert body["total"] == 3
    assert [(b["low"], b["count"], b["previous"]) for b in body["buckets"]] == [
        (0, 1, 0),
        (25, 0, 1),
        (50, 1, 0),
        (75, 1, 0),
    ]
    assert body["data"] == [{"url": "https://ex.example/pricing", "leads": 2, "average_score": 70.0}]
    rest = conforms(
        api.get("/analytics/lead-quality", limit=1, cursor=body["next_cursor"], **PERIOD), "/analytics/lead-quality"
    )
    assert rest["data"] == [{"url": "https://ex.example/about", "leads": 1, "average_score": 10.0}]
    assert rest["next_cursor"] is None
    assert_error(api.get("/analytics/lead-quality", cursor="WzEsIDJd"), 400, "invalid_request")
