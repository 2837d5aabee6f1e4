"""The analytics pages with data: figures and formulas shown, CSV exports (no cell starts a formula),
filters, and gaps of both kinds built from a seeded set of questions on indexed pages."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from assistants.analytics import services
from assistants.models import ContentGap, Topic
from tests.assistants.analytics.seed import DAY1, DAY2, answer, ask, at, conversation, rate, seed
from tests.e2e.test_analytics_gap import PAGES
from tests.factories import index_pages

pytestmark = pytest.mark.django_db


def client_for(team):
    client = Client()
    client.force_login(team.memberships.get().user)
    return client


def test_the_overview_shows_the_metrics_their_formulas_and_the_deltas():
    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    url = reverse("assistant_analytics", args=[s.a.pk, "overview"])
    page = client_for(s.team).get(url, {"start": DAY2.isoformat(), "end": DAY2.isoformat()})
    assert page.status_code == 200
    text = page.content.decode()
    assert "thumbs up ÷ (thumbs up + thumbs down)" in text  # the formula, from the metrics module
    assert "100.0 %" in text and "+40.0 pts" in text  # answered 1/1 now, 3/5 the day before
    assert "https://ex.example/pricing" in text
    assert 'data-chart-for="days-table"' in text and 'id="days-table"' in text
    assert "<script>" not in text  # scripts are static files only


def test_the_team_page_sums_its_assistants_and_filters_by_one():
    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    client = client_for(s.team)
    url = reverse("team_analytics_export", args=[s.team.pk, "overview"])
    period = {"start": DAY1.isoformat(), "end": DAY2.isoformat(), "table": "metrics"}
    rows = list(csv.reader(io.StringIO(b"".join(client.get(url, period).streaming_content).decode())))
    assert rows[0] == ["Metric", "This period", "Previous period", "Change", "Formula"]
    assert {row[0]: row[1] for row in rows[1:]}["Conversations"] == "6"
    only_b = list(
        csv.reader(io.StringIO(b"".join(client.get(url, {**period, "assistant": s.b.pk}).streaming_content).decode()))
    )
    assert {row[0]: row[1] for row in only_b[1:]}["Conversations"] == "1"


def test_an_invalid_period_is_marked_at_its_field():
    s = seed()
    page = client_for(s.team).get(
        reverse("team_analytics", args=[s.team.pk, "overview"]), {"start": "2026-11-10", "end": "2026-11-01"}
    )
    assert page.status_code == 400
    assert b"The end date is before the start date." in page.content


def test_csv_cells_never_start_a_formula():
    s = seed()
    c = conversation(s.a, at(DAY1, 20))
    ask(c, at(DAY1, 20, 1), '=HYPERLINK("http://evil")')
    answer(c, at(DAY1, 20, 2), text="", error="timeout")
    services.rollups_compute(start=DAY1, end=DAY2)
    url = reverse("assistant_analytics_export", args=[s.a.pk, "conversations"])
    body = b"".join(client_for(s.team).get(url, {"start": DAY1.isoformat(), "end": DAY2.isoformat()}).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert ['\'=HYPERLINK("http://evil")'] == [row[1] for row in rows[1:] if "HYPERLINK" in row[1]]


def test_the_empty_states():
    s = seed()
    client = client_for(s.team)
    for tab, words in [
        ("overview", b"No conversations in this period"),
        ("questions", b"No topics yet"),
        ("gaps", b"No gaps yet"),
        ("sources", b"No answer cited a page in this period"),
        ("conversations", b"No conversation in this period went wrong"),
    ]:
        page = client.get(
            reverse("assistant_analytics", args=[s.b.pk, tab]), {"start": "2026-01-01", "end": "2026-01-02"}
        )
        assert page.status_code == 200 and words in page.content, tab


def test_source_usage_and_pages_never_cited():
    s = seed()
    index_pages(s.a, PAGES)
    services.rollups_compute(start=DAY1, end=DAY2)
    page = client_for(s.team).get(
        reverse("assistant_analytics", args=[s.a.pk, "sources"]), {"start": DAY1.isoformat(), "end": DAY2.isoformat()}
    )
    text = page.content.decode()
    assert "Pricing" in text and "Install guide" in text
    assert "Installing the app" in text and "Shipping" in text  # indexed, never cited
    assert 'Never cited in the period <span class="count">2</span>' in text


def test_gaps_of_both_kinds_ranked_by_visitors():
    s = seed()
    index_pages(s.a, PAGES)
    # Two visitors ask about shipping and rate the answer down: a page covers it, the answer failed.
    for hour, question in [(15, "How long does shipping take?"), (16, "How many days until my order ships?")]:
        c = conversation(s.a, at(DAY2, hour))
        ask(c, at(DAY2, hour, 1), question)
        rate(answer(c, at(DAY2, hour, 2), text="It depends."), -1)
    build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk)
    build.refresh_from_db()
    assert build.status == "done" and build.questions == 8
    assert Topic.objects.filter(build=build).count() >= 4
    gaps = list(ContentGap.objects.filter(assistant=s.a).order_by("-visitors", "pk"))
    shipping = next(g for g in gaps if "ship" in g.label)
    assert shipping.kind == ContentGap.Kind.ANSWER_FAILED and shipping.visitors == 2
    assert shipping.best_title == "Shipping" and shipping.best_rank == 1 and shipping.best_score > 0.3
    saml = next(g for g in gaps if "SAML" in g.label)
    assert saml.kind == ContentGap.Kind.NO_PAGE and saml.visitors == 1
    assert gaps[0] == shipping
    page = client_for(s.team).get(reverse("assistant_analytics", args=[s.a.pk, "gaps"]))
    text = page.content.decode()
    assert text.index("ship") < text.index("SAML")
    assert "A page covers it but the answer failed" in text and "No page covers it" in text
    detail = client_for(s.team).get(reverse("gap_detail", args=[shipping.pk])).content.decode()
    assert "rank 1" in detail and "Orders ship within two business days" in detail
    # Rebuilding keeps the same gaps (no duplicates).
    again = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
    services.topics_build(build_id=again.pk)
    assert ContentGap.objects.filter(assistant=s.a).count() == len(gaps)


def test_beyond_the_searched_gaps_the_kind_comes_from_what_the_answers_recorded():
    """The long tail of gaps is classified from the answers' own retrieval evidence and citations."""
    s = seed()
    c = conversation(s.a, at(DAY2, 15))
    ask(c, at(DAY2, 15, 1), "How long does shipping take?")
    cited = [
        {"n": 1, "title": "Pricing", "url": "https://ex.example/pricing"},
        {"n": 2, "title": "Shipping", "url": "https://ex.example/shipping"},
    ]
    rate(
        answer(
            c,
            at(DAY2, 15, 2),
            text="It depends.",
            citations=cited,
            grounding={"retrieval": {"weak": False, "similarity": 0.61}},
        ),
        -1,
    )
    build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk, searched=0)  # no gap searched: all from the records
    shipping = ContentGap.objects.get(assistant=s.a, label="How long does shipping take?")
    assert shipping.kind == ContentGap.Kind.ANSWER_FAILED
    assert (shipping.best_url, shipping.best_rank, shipping.best_score) == ("https://ex.example/pricing", 1, 0.61)
    saml = ContentGap.objects.get(assistant=s.a, label="Do you support SAML?")
    assert saml.kind == ContentGap.Kind.NO_PAGE  # its answer cited nothing


def test_with_a_model_the_outline_is_written_by_it_and_shown_as_text(settings):
    from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, openai_script

    s = seed()
    outline = ["# SAML single sign-on\n", "- Which identity providers: [to fill in]\n", "- <b>Setup</b> steps"]
    with FakeServer([Reply(body=openai_script(outline, 300, 40).full())]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url + "/v1", "gpt-test", "sk-test"
        settings.OUTBOUND_ALLOW_PRIVATE = True
        build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
        services.topics_build(build_id=build.pk)
    gap = ContentGap.objects.get(assistant=s.a, label="Do you support SAML?")
    assert gap.proposal["outline"]["written"] == "".join(outline)
    sent = [r.json["messages"][1]["content"] for r in server.requests]
    assert any("- Do you support SAML?" in content for content in sent)
    page = client_for(s.team).get(reverse("gap_detail", args=[gap.pk])).content.decode()
    assert "&lt;b&gt;Setup&lt;/b&gt; steps" in page and "<b>Setup</b>" not in page
    assert "# SAML single sign-on<br>" in page


def test_without_a_model_or_when_it_fails_the_draft_stands(settings):
    from tests.assistants.answering.providers.fake_servers import FakeServer, json_reply

    s = seed()
    with FakeServer([json_reply(500, {"error": {"message": "down"}})]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url + "/v1", "gpt-test", "sk-test"
        settings.OUTBOUND_ALLOW_PRIVATE = True
        build = services.topics_build_queue(assistant=s.a, start=DAY1, end=DAY2)
        services.topics_build(build_id=build.pk)
    assert server.requests
    gap = ContentGap.objects.get(assistant=s.a, label="Do you support SAML?")
    assert gap.proposal["outline"]["written"] == ""
    assert gap.proposal["outline"]["questions"] == ["Do you support SAML?"]


def test_stale_pages_and_what_the_last_crawl_left_out():
    from ingestion.models import CrawlRun, Document, Source

    s = seed()
    source = Source.objects.create(assistant=s.a, url="https://ex.example/", name="site")
    run = CrawlRun.objects.create(
        source=source,
        status=CrawlRun.Status.DONE,
        report={
            "failed": [{"url": "https://ex.example/broken", "reason": "HTTP 500"}],
            "skipped": [{"url": "https://ex.example/tiny", "reason": "thin: 12 words"}],
        },
    )
    Source.objects.filter(pk=source.pk).update(last_run=run)
    Document.objects.create(
        source=source,
        url="https://ex.example/pricing",
        title="Pricing",
        status=Document.Status.READY,
        last_modified="Wed, 01 Jan 2020 00:00:00 GMT",
    )
    Document.objects.create(  # cited only twice: not listed however old
        source=source,
        url="https://ex.example/install",
        title="Install guide",
        status=Document.Status.READY,
        last_modified="Wed, 01 Jan 2020 00:00:00 GMT",
    )
    services.rollups_compute(start=DAY1, end=DAY2)
    page = client_for(s.team).get(
        reverse("assistant_analytics", args=[s.a.pk, "sources"]), {"start": DAY1.isoformat(), "end": DAY2.isoformat()}
    )
    usage = page.context["usage"]
    assert [(row["url"], row["cited"]) for row in usage["stale"]] == [("https://ex.example/pricing", 3)]
    assert usage["crawl_failed"] == [{"source": "site", "url": "https://ex.example/broken", "reason": "HTTP 500"}]
    assert usage["crawl_skipped"][0]["reason"] == "thin: 12 words"
    text = page.content.decode()
    assert "Jan 1, 2020" in text and "thin: 12 words" in text


def test_a_date_out_of_range_is_refused_at_its_field():
    """The previous period of year 1 or the day after 9999-12-31 are no dates: refused, not a 500."""
    s = seed()
    for params in ({"start": "0001-01-01"}, {"end": "9999-12-31"}):
        page = client_for(s.team).get(reverse("assistant_analytics", args=[s.a.pk, "overview"]), params)
        assert page.status_code == 400  # as for any invalid filter: the form shown with its error
        assert "A date from 2000-01-01 to 2999-12-31." in page.content.decode()


def test_the_lists_show_the_largest_topics_and_gaps_and_the_export_has_them_all(monkeypatch):
    from django.utils import timezone

    from assistants.analytics import selectors
    from assistants.models import TopicBuild

    monkeypatch.setattr(selectors, "PAGE_ROWS", 3)
    s = seed()
    build = TopicBuild.objects.create(
        assistant=s.a, start=DAY1, end=DAY2, status=TopicBuild.Status.DONE, finished_at=timezone.now()
    )
    for n in range(5):  # topic-0 has 1 question … topic-4 has 5
        topic = Topic.objects.create(build=build, assistant=s.a, label=f"topic-{n}", questions=n + 1, visitors=n + 1)
        ContentGap.objects.create(assistant=s.a, topic=topic, label=f"gap-{n}", kind="no_page", visitors=n + 1)
    client = client_for(s.team)
    period = {"start": DAY1.isoformat(), "end": DAY2.isoformat()}  # the build's: its topics' own counts
    for tab, name, table in [("questions", "topic", "topics"), ("gaps", "gap", "gaps")]:
        text = client.get(reverse("assistant_analytics", args=[s.a.pk, tab]), period).content.decode()
        assert [n for n in range(5) if f"{name}-{n}<" in text] == [2, 3, 4], tab  # the three largest
        assert text.index(f"{name}-4<") < text.index(f"{name}-3<") < text.index(f"{name}-2<")
        assert f"Showing the first 3 of 5 {table}" in text
        export = client.get(reverse("assistant_analytics_export", args=[s.a.pk, tab]), {"table": table, **period})
        rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
        assert [row[0] for row in rows[1:]] == [f"{name}-{n}" for n in (4, 3, 2, 1, 0)], tab
    # At or under the limit, no note.
    monkeypatch.setattr(selectors, "PAGE_ROWS", 5)
    page = client.get(reverse("assistant_analytics", args=[s.a.pk, "gaps"]), period)
    assert "Showing the first" not in page.content.decode()


def test_a_page_without_last_modified_is_stale_by_its_content_hash_history_as_crawled():
    """Issue 22: the crawls keep when a page's content last changed (``content_changed_at``, set when its
    content hash differs); a page whose site sends no Last-Modified is stale when its content has not
    changed for a year of crawls, and a change the crawls saw outranks an old Last-Modified."""
    import datetime as dt

    from django.utils import timezone

    from ingestion.models import CrawlRun, Document, Source
    from ingestion.services.documents import document_store

    s = seed()
    source = Source.objects.create(assistant=s.a, url="https://ex.example/", name="site")
    run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.DONE)
    sections = [{"heading_path": ["Pricing"], "anchor": "", "text": "The pro plan costs 10 a month."}]
    url = "https://ex.example/pricing"  # cited three times in the period
    services.rollups_compute(start=DAY1, end=DAY2)

    def stale():
        page = client_for(s.team).get(
            reverse("assistant_analytics", args=[s.a.pk, "sources"]),
            {"start": DAY1.isoformat(), "end": DAY2.isoformat()},
        )
        return [(row["url"], row["basis"]) for row in page.context["usage"]["stale"]], page.content.decode()

    assert document_store(run=run, url=url, title="Pricing", sections=sections)  # no Last-Modified
    document = Document.objects.get(url=url)
    assert document.content_changed_at == document.fetched_at
    assert stale()[0] == []  # first stored just now
    # Stored 400 days ago and crawled since with the same content: unchanged for over a year.
    long_ago = timezone.now() - dt.timedelta(days=400)
    Document.objects.filter(pk=document.pk).update(
        created_at=long_ago,
        content_changed_at=long_ago,
        status=Document.Status.READY,
        indexed_hash=document.content_hash,
    )
    assert not document_store(run=run, url=url, title="Pricing", sections=sections)
    assert Document.objects.get(pk=document.pk).content_changed_at == long_ago
    rows, text = stale()
    assert rows == [(url, "crawl")] and "as crawled" in text
    # Its content changes (the site still sends no Last-Modified): fresh again.
    changed = [{**sections[0], "text": "The pro plan costs 12 a month."}]
    assert document_store(run=run, url=url, title="Pricing", sections=changed)
    assert Document.objects.get(pk=document.pk).content_changed_at > long_ago
    assert stale()[0] == []
    # A 2020 Last-Modified does not outrank the change the crawls saw ...
    Document.objects.filter(pk=document.pk).update(last_modified="Wed, 01 Jan 2020 00:00:00 GMT")
    assert stale()[0] == []
    # ... but is the evidence while the crawls have seen one version only.
    Document.objects.filter(pk=document.pk).update(content_changed_at=long_ago)
    assert stale()[0] == [(url, "last_modified")]
