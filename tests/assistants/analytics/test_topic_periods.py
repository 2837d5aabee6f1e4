"""Topics of a chosen period (issue 22): builds are kept per period, and a build of another period
shows its topics' counts over the questions asked in the chosen one (its stored question→topic
assignments); the gaps listed are those of the period."""

import datetime as dt

import pytest
from django.urls import reverse

from assistants.analytics import selectors, services
from assistants.analytics.selectors import Period
from assistants.models import ContentGap, TopicBuild
from tests.assistants.analytics.seed import DAY1, DAY2, answer, ask, at, conversation, rate
from tests.assistants.analytics.test_pages import client_for
from tests.factories import make_assistant, make_team

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 5)


def asked(assistant, day, hour, text, *, failed=False, down=False, visitor=None):
    c = conversation(assistant, at(day, hour))
    if visitor:
        c.visitor_token = visitor
        c.save(update_fields=["visitor_token"])
    question = ask(c, at(day, hour, 1), text)
    reply = answer(c, at(day, hour, 2), text="I don't know." if failed else "It is so.", unanswered=failed)
    if down:
        rate(reply, -1)
    return question


def build(assistant, start, end):
    queued = services.topics_build_queue(assistant=assistant, start=start, end=end)
    services.topics_build(build_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == TopicBuild.Status.DONE
    return queued


def figures(rows):
    return {t.label: (t.questions, t.visitors, t.unanswered, t.rated_down, t.first_half, t.second_half) for t in rows}


def test_a_period_inside_a_build_counts_its_own_questions_and_an_earlier_builds_period_is_kept(embedder):
    assistant = make_assistant()
    asked(assistant, OCTOBER, 9, "Do you ship to Canada?", failed=True)
    asked(assistant, OCTOBER, 10, "Can you deliver to Canada?")
    asked(assistant, DAY1, 9, "How much does the pro plan cost?", failed=True)
    asked(assistant, DAY1, 10, "What is the price of the pro plan?", down=True, visitor="v-same")
    asked(assistant, DAY2, 9, "How much is the pro plan?", visitor="v-same")
    asked(assistant, DAY2, 10, "How do I reset my password?")
    october = build(assistant, OCTOBER, OCTOBER + dt.timedelta(days=1))
    november = build(assistant, DAY1, DAY2)
    # The November build does not replace October's: another period.
    assert set(TopicBuild.objects.filter(assistant=assistant).values_list("pk", flat=True)) == {october.pk, november.pk}
    # The build's own period: its stored counts.
    builds, rows, total = selectors.topics(assistant_ids=[assistant.pk], period=Period(DAY1, DAY2))
    assert [b.pk for b in builds] == [november.pk] and total == 2
    price = next(t for t in rows if "pro plan" in t.label)
    assert (price.questions, price.visitors, price.unanswered, price.rated_down) == (3, 2, 1, 1)
    # A day inside it: counted over that day's questions only (hand-computed), the others left out.
    builds, rows, total = selectors.topics(assistant_ids=[assistant.pk], period=Period(DAY2, DAY2))
    assert [b.pk for b in builds] == [november.pk] and total == 2
    assert sorted(figures(rows).values()) == [(1, 1, 0, 0, 1, 0), (1, 1, 0, 0, 1, 0)]  # both before noon
    builds, rows, total = selectors.topics(assistant_ids=[assistant.pk], period=Period(DAY1, DAY1))
    assert total == 1 and list(figures(rows).values()) == [(2, 2, 1, 1, 2, 0)]
    # October: its own build's topics, still there.
    builds, rows, total = selectors.topics(assistant_ids=[assistant.pk], period=Period(OCTOBER, OCTOBER))
    assert [b.pk for b in builds] == [october.pk]
    assert total == 1 and "Canada" in rows[0].label and (rows[0].questions, rows[0].unanswered) == (2, 1)
    # The gaps of each period: October's and November's apart (the November build left October's open).
    octobers = selectors.gaps(assistant_ids=[assistant.pk], period=Period(OCTOBER, OCTOBER))[0]
    novembers = selectors.gaps(assistant_ids=[assistant.pk], period=Period(DAY1, DAY2))[0]
    assert ["Canada" in g.label for g in octobers] == [True]
    assert ["pro plan" in g.label for g in novembers] == [True]
    assert ContentGap.objects.filter(assistant=assistant, status=ContentGap.Status.OPEN).count() == 2
    # No build covers the period: nothing, and the page says so.
    assert (
        selectors.topics(
            assistant_ids=[assistant.pk], period=Period(DAY2 + dt.timedelta(days=5), DAY2 + dt.timedelta(days=6))
        )[2]
        == 0
    )
    # New questions join the current build (the one ending last), not October's.
    assert services.current_build(assistant.pk).pk == november.pk


def test_the_nightly_build_replaces_yesterdays_and_at_most_keep_builds_stay(embedder, monkeypatch):
    assistant = make_assistant()
    asked(assistant, DAY1, 9, "How much does the pro plan cost?")
    first = build(assistant, DAY1 - dt.timedelta(days=29), DAY1)
    second = build(assistant, DAY1 - dt.timedelta(days=28), DAY2)  # the next night: 29 of its 30 days shared
    assert list(TopicBuild.objects.filter(assistant=assistant).values_list("pk", flat=True)) == [second.pk]
    assert first.pk != second.pk
    monkeypatch.setattr(services, "KEEP_BUILDS", 2)
    build(assistant, dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    march = build(assistant, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    # The earliest period goes; the new build and the current (nightly) one stay.
    assert set(TopicBuild.objects.filter(assistant=assistant).values_list("pk", flat=True)) == {second.pk, march.pk}


def test_the_topics_page_shows_the_chosen_periods_counts(embedder):
    team = make_team()
    assistant = make_assistant(team=team)
    asked(assistant, DAY1, 9, "How much does the pro plan cost?", failed=True)
    asked(assistant, DAY2, 9, "What is the price of the pro plan?")
    build(assistant, DAY1, DAY2)
    client = client_for(team)
    page = client.get(
        reverse("assistant_analytics", args=[assistant.pk, "questions"]),
        {"start": DAY2.isoformat(), "end": DAY2.isoformat()},
    )
    assert page.status_code == 200
    assert [(t.questions, t.unanswered) for t in page.context["topics"]] == [(1, 0)]
    assert "counted for the chosen period" in page.content.decode()
    page = client.get(
        reverse("assistant_analytics", args=[assistant.pk, "questions"]),
        {"start": "2026-06-01", "end": "2026-06-30"},
    )
    assert page.context["topics"] == [] and "No topics cover Jun 1 to Jun 30, 2026" in page.content.decode()
