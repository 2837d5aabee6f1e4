"""The Analytics section in a real browser: the navigation leads to it, the overview draws its chart
from the table beside it (Chart.js, a static file), every tab shows its data and exports, a gap's page
shows its kind and fix; screenshots at desktop and phone sizes in test-artifacts/."""

import datetime as dt

from django.utils import timezone
from playwright.sync_api import expect

from assistants.analytics import services
from tests.assistants.analytics.seed import P1, answer, ask, conversation, rate
from tests.browser.dashboard import shots, signed_in
from tests.browser.helpers import ARTIFACTS


def seeded(assistant):
    today = timezone.now().date()
    for days_ago, question, unanswered, rating in [
        (1, "How much does the Business plan cost?", False, 1),
        (2, "What is the price of the Business plan?", False, -1),
        (3, "Do you deliver to Iceland?", True, None),
        (3, "Can you ship the gadget to Iceland?", True, None),
        (5, "How do I install the gadget?", False, None),
        (33, "How much is it?", False, None),
    ]:
        when = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(10), tzinfo=dt.UTC)
        c = conversation(assistant, when, "http://docs.test/pricing/")
        ask(c, when + dt.timedelta(minutes=1), question)
        reply = answer(
            c,
            when + dt.timedelta(minutes=2),
            text="I don't know." if unanswered else "It costs 49 euros.",
            ttft=250 + 100 * days_ago,
            citations=[] if unanswered else [P1 | {"url": "http://docs.test/pricing/", "title": "Pricing"}],
            unanswered=unanswered,
        )
        if rating:
            rate(reply, rating)
    services.rollups_compute(start=today - dt.timedelta(days=60), end=today)
    build = services.topics_build_queue(assistant=assistant, start=today - dt.timedelta(days=29), end=today)
    services.topics_build(build_id=build.pk)


def test_the_analytics_pages(browser, platform, assistant, owner):
    seeded(assistant)
    page = signed_in(browser, platform, owner)
    page.goto(platform)
    page.get_by_role("navigation", name="Team").get_by_role("link", name="Analytics").click()
    expect(page.locator("h1")).to_have_text("Analytics")
    expect(page.locator("[data-metric=conversations] .metric-value")).to_have_text("5")
    expect(page.locator("[data-metric=unanswered_rate] .metric-value")).to_have_text("40.0 %")
    # The chart is drawn by the vendored Chart.js from the table beside it.
    page.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length === 1")
    assert (
        page.evaluate("() => Object.values(window.Chart.instances)[0].data.datasets[1].data.reduce((a, b) => a + b)")
        == 5
    )
    page.get_by_text("The chart's numbers as a table").click()
    expect(page.locator("#days-table tbody tr")).to_have_count(30)
    shots(page, "analytics-overview")

    page.get_by_role("link", name="Top questions").click()
    expect(page.locator(".topics-table tbody tr").first).to_contain_text("Business plan")
    shots(page, "analytics-questions")
    # A narrower period: the build's topics counted over its questions (issue 22).
    today = timezone.now().date()
    page.get_by_label("From", exact=True).fill((today - dt.timedelta(days=2)).isoformat())
    page.get_by_label("To", exact=True).fill((today - dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".build-note")).to_contain_text("counted for the chosen period")
    expect(page.locator(".topics-table tbody tr")).to_have_count(1)
    expect(page.locator(".topics-table tbody tr td[data-label=Questions]")).to_have_text("2")
    shots(page, "analytics-questions-period")
    page.goto(f"{platform}/teams/{assistant.team_id}/analytics/questions/")

    page.get_by_role("link", name="Content gaps").click()
    gaps = page.locator(".gap")
    expect(gaps).to_have_count(2)
    expect(gaps.first).to_contain_text("Iceland")
    shots(page, "analytics-gaps")
    gaps.first.locator(".gap-title").click()
    expect(page.locator(".gap-meta .badge").first).to_have_text("No page covers it")
    expect(page.get_by_label("Question", exact=True)).not_to_have_value("")
    page.get_by_label("Answer", exact=True).fill("")
    page.get_by_role("button", name="Add to the Q&A library and re-check").click()
    expect(page.locator("#gap-qa-answer-error")).to_have_text("Write the answer the assistant should give.")
    shots(page, "analytics-gap")

    # The pricing page, cited three times, stored 400 days ago and unchanged in every crawl since.
    from ingestion.models import Document, Source

    long_ago = timezone.now() - dt.timedelta(days=400)
    source = Source.objects.create(assistant=assistant, url="http://docs.test/", name="docs")
    document = Document.objects.create(
        source=source, url="http://docs.test/pricing/", title="Pricing", status=Document.Status.READY
    )
    Document.objects.filter(pk=document.pk).update(created_at=long_ago, content_changed_at=long_ago)
    page.goto(f"{platform}/teams/{assistant.team_id}/analytics/sources/")
    expect(page.locator("table").first).to_contain_text("Pricing")
    expect(page.locator("#stale-title").locator("xpath=../..").locator("tbody")).to_contain_text("as crawled")
    shots(page, "analytics-sources")
    page.get_by_role("link", name="Worst conversations").click()
    expect(page.locator(".log-table tbody tr")).to_have_count(3)
    shots(page, "analytics-conversations")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    assert page.errors == []


def test_the_largest_topics_and_gaps_are_listed_and_the_export_has_all(browser, platform, assistant, owner):
    """An assistant with more topics and gaps than a page lists (selectors.PAGE_ROWS): the largest are
    shown with a note of how many there are, and its export link gives every one."""
    import csv
    import io

    from assistants.analytics.selectors import PAGE_ROWS
    from assistants.models import ContentGap, Topic, TopicBuild

    today = timezone.now().date()
    build = TopicBuild.objects.create(
        assistant=assistant,
        start=today - dt.timedelta(days=29),
        end=today,
        status=TopicBuild.Status.DONE,
        questions=9000,
        finished_at=timezone.now(),
    )
    total = PAGE_ROWS + 30
    topics = Topic.objects.bulk_create(
        Topic(
            build=build,
            assistant=assistant,
            label=f"Question about subject {n}?",
            terms=[f"subject {n}", "plan"],
            questions=n + 1,
            visitors=n + 1,
            unanswered=n % 3,
            first_half=n % 5,
            second_half=n % 7,
            examples=[f"Question about subject {n}?", f"Subject {n}, how?"],
        )
        for n in range(total)
    )
    ContentGap.objects.bulk_create(
        ContentGap(
            assistant=assistant, topic=t, label=t.label, kind="no_page", visitors=t.visitors, questions=t.questions
        )
        for t in topics
    )
    page = signed_in(browser, platform, owner)
    for tab, rows, table in [("questions", ".topics-table tbody tr", "topics"), ("gaps", ".gap", "gaps")]:
        page.goto(f"{platform}/assistants/{assistant.pk}/analytics/{tab}/")
        expect(page.locator(rows)).to_have_count(PAGE_ROWS)
        expect(page.locator(rows).first).to_contain_text(f"subject {total - 1}?")
        note = page.get_by_role("note")
        expect(note).to_contain_text(f"Showing the first {PAGE_ROWS} of {total} {table}")
        with page.expect_download() as download:
            note.get_by_role("link", name="Export CSV").click()
        with open(download.value.path(), encoding="utf-8") as handle:
            assert len(list(csv.reader(io.StringIO(handle.read())))) == total + 1
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(ARTIFACTS / f"analytics-{tab}-many-desktop.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        note.evaluate("element => element.scrollIntoView()")  # the note and the list's first rows
        page.screenshot(path=str(ARTIFACTS / f"analytics-{tab}-many-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})
    assert page.errors == []


def test_the_overview_shows_handoff_reasons_and_lead_quality(browser, platform, assistant, owner):
    from assistants.models import Handoff, Lead

    seeded(assistant)
    today = timezone.now().date()
    for days_ago, reason in [(1, "missing_knowledge"), (2, "missing_knowledge"), (2, "taken_over"), (40, "rule")]:
        when = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(15), tzinfo=dt.UTC)
        h = Handoff.objects.create(conversation=conversation(assistant, when), reason=reason)
        Handoff.objects.filter(pk=h.pk).update(requested_at=when)
    for days_ago, score, url in [
        (1, 85, "http://docs.test/pricing/?utm=ad"),
        (2, 40, "http://docs.test/pricing/"),
        (3, 60, "http://docs.test/<i>features</i>/a-very-long-address-that-has-to-wrap-on-a-phone-screen"),
    ]:
        when = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(16), tzinfo=dt.UTC)
        lead = Lead.objects.create(team=assistant.team, assistant=assistant, score=score, page_url=url)
        Lead.objects.filter(pk=lead.pk).update(created_at=when)
    services.rollups_compute(start=today - dt.timedelta(days=60), end=today)
    page = signed_in(browser, platform, owner)
    page.goto(f"{platform}/assistants/{assistant.pk}/analytics/overview/")
    expect(page.locator("[data-reason=missing_knowledge] td").first).to_have_text("2")
    expect(page.get_by_role("cell", name="http://docs.test/<i>features</i>/", exact=False)).to_be_visible()
    page.get_by_role("link", name="75–100").click()
    expect(page.locator("h1")).to_have_text("Leads")
    page.go_back()
    page.locator("#handoff-reasons-title").scroll_into_view_if_needed()
    shots(page, "analytics-handoffs-leads")
