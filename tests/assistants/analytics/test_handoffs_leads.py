"""The Overview's handoff reasons and lead quality on a seeded set with hand-computed values; another
team's handoffs and leads never count, and visitor-written page addresses are escaped."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from assistants.analytics import selectors, services
from assistants.analytics.selectors import Period
from assistants.models import Handoff, Lead, TopicBuild
from tests.assistants.analytics.seed import DAY1, DAY2, answer, ask, at, conversation, seed

pytestmark = pytest.mark.django_db

DAY0 = DAY1 - (DAY2 - DAY1)  # the previous period of [DAY1, DAY2] is [DAY1 - 2, DAY1 - 1]


def handoff(assistant, when, reason):
    c = conversation(assistant, when)
    h = Handoff.objects.create(conversation=c, reason=reason)
    Handoff.objects.filter(pk=h.pk).update(requested_at=when)


def lead(assistant, when, score, page_url="", conv=None):
    row = Lead.objects.create(
        team=assistant.team, assistant=assistant, score=score, page_url=page_url, conversation=conv
    )
    Lead.objects.filter(pk=row.pk).update(created_at=when)
    return row


def test_handoff_reasons_this_period_and_the_previous_one_per_assistant():
    s = seed()
    R = Handoff.Reason
    handoff(s.a, at(DAY1, 15), R.MISSING_KNOWLEDGE)
    handoff(s.a, at(DAY2, 15), R.MISSING_KNOWLEDGE)
    handoff(s.a, at(DAY2, 16), R.TAKEN_OVER)
    handoff(s.b, at(DAY1, 17), R.VISITOR_ASKED)
    handoff(s.a, at(DAY1 - (DAY2 - DAY1), 9), R.MISSING_KNOWLEDGE)  # the previous period
    handoff(s.other, at(DAY1, 15), R.MISSING_KNOWLEDGE)  # another team's
    period = Period(DAY1, DAY2)
    got = selectors.handoff_reasons(assistant_ids=[s.a.pk, s.b.pk], period=period)
    by = {r["reason"]: r for r in got["reasons"]}
    assert got["total"] == 4 and got["total_previous"] == 1
    assert (by["missing_knowledge"]["count"], by["missing_knowledge"]["previous"]) == (2, 1)
    assert by["missing_knowledge"]["delta"] == 1 and by["missing_knowledge"]["share"] == 0.5
    assert by["taken_over"]["count"] == 1 and by["visitor_asked"]["count"] == 1 and by["rule"]["count"] == 0
    assert [(r["assistant"], r["reason"], r["count"], r["previous"]) for r in got["per_assistant"]] == [
        ("A", "missing_knowledge", 2, 1),
        ("A", "taken_over", 1, 0),
        ("B", "visitor_asked", 1, 0),
    ]
    # The reasons add up to the rollups' handoffs (the handoff rate's numerator).
    services.rollups_compute(start=DAY0, end=DAY2)
    assert selectors.totals(assistant_ids=[s.a.pk, s.b.pk], period=period)["handoffs"] == got["total"]
    only_a = selectors.handoff_reasons(assistant_ids=[s.a.pk], period=period)
    assert only_a["total"] == 3


def test_lead_quality_buckets_pages_and_topics():
    s = seed()
    lead(s.a, at(DAY1, 9), 10, "https://ex.example/pricing?utm=1")
    lead(s.a, at(DAY1, 10), 30, "https://ex.example/pricing#plans")
    lead(s.a, at(DAY2, 10), 80, "https://ex.example/<b>demo</b>")
    lead(s.b, at(DAY2, 11), 75)
    lead(s.b, at(DAY2, 12), 74)
    lead(s.a, at(DAY0, 12), 100)  # the previous period
    lead(s.other, at(DAY1, 9), 90, "https://other.example/")  # another team's
    period = Period(DAY1, DAY2)
    got = selectors.lead_quality(assistant_ids=[s.a.pk, s.b.pk], period=period)
    assert [(b["label"], b["count"], b["previous"]) for b in got["buckets"]] == [
        ("0–24", 1, 0),
        ("25–49", 1, 0),
        ("50–74", 1, 0),
        ("75–100", 2, 1),
    ]
    assert got["total"] == 5
    assert got["pages"] == [
        {"url": "https://ex.example/pricing", "leads": 2, "average": 20.0},
        {"url": "https://ex.example/<b>demo</b>", "leads": 1, "average": 80.0},
    ]
    assert got["topics"] == [] and not got["has_topics"]

    client = Client()
    client.force_login(s.team.memberships.get().user)
    services.rollups_compute(start=DAY0, end=DAY2)
    dates = {"start": DAY1.isoformat(), "end": DAY2.isoformat()}
    text = client.get(reverse("team_analytics", args=[s.team.pk, "overview"]), dates).content.decode()
    assert "&lt;b&gt;demo&lt;/b&gt;" in text and "<b>demo</b>" not in text
    assert f"?since={DAY1.isoformat()}&amp;until={DAY2.isoformat()}&amp;min_score=75&amp;max_score=100" in text
    assert "other.example" not in text
    url = reverse("team_analytics_export", args=[s.team.pk, "overview"])
    rows = list(
        csv.reader(io.StringIO(b"".join(client.get(url, {**dates, "table": "lead_pages"}).streaming_content).decode()))
    )
    assert rows == [
        ["Page", "Leads", "Average score"],
        ["https://ex.example/pricing", "2", "20.0"],
        ["https://ex.example/<b>demo</b>", "1", "80.0"],
    ]


def test_leads_by_topic_join_the_latest_build():
    s = seed()
    asked = [
        "How much does the pro plan cost?",
        "What is the price of the pro plan?",
        "How do I reset my password?",
        "I forgot my password, how do I change it?",
    ]
    convs = []
    for hour, text in enumerate(asked):
        c = conversation(s.a, at(DAY1, 15 + hour))
        ask(c, at(DAY1, 15 + hour, 1), text)
        answer(c, at(DAY1, 15 + hour, 2))
        convs.append(c)
    build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk)
    build.refresh_from_db()
    assert build.status == TopicBuild.Status.DONE
    lead(s.a, at(DAY1, 20), 90, conv=convs[0])
    lead(s.a, at(DAY1, 21), 60, conv=convs[1])
    lead(s.a, at(DAY1, 22), 20, conv=convs[2])
    got = selectors.lead_quality(assistant_ids=[s.a.pk], period=Period(DAY1, DAY2))
    assert got["has_topics"]
    topics = {frozenset(build.topics.get(pk=row["topic_id"]).message_ids): row for row in got["topics"]}
    pricing = next(row for ids, row in topics.items() if len(ids) >= 2 and row["leads"] == 2)
    assert pricing["average"] == 75.0  # (90 + 60) / 2
    assert sorted(row["leads"] for row in got["topics"]) == [1, 2]
    assert {row["average"] for row in got["topics"]} == {75.0, 20.0}
