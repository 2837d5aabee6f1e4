"""The whole path on real services: a real Celery worker crawls the DRF site served on loopback
into the embedded PostgreSQL, and the full-page assistant answers with the right citation."""

import json
import time

import pytest
from django.test import AsyncClient, Client

from assistants.models import Message
from ingestion import services
from ingestion.models import CrawlRun, Document
from tests.conftest import wait_for
from tests.factories import make_assistant, make_team, make_user
from tests.sse import answer_text, ask, citations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the site is served on 127.0.0.1 (the worker is told too)


QUESTIONS = [
    ("How do I set the default pagination style for all views?", "/api-guide/pagination/"),
    ("How can I limit how many requests anonymous users can make?", "/api-guide/throttling/"),
    ("How do I use token authentication?", "/api-guide/authentication/"),
]


def test_a_crawled_site_answers_with_citations(celery_worker_process, drf_site, drf_vectors):
    owner = make_user()
    assistant = make_assistant(make_team(owner))
    source = services.source_create_website(assistant=assistant, url=f"{drf_site}/", max_pages=200, max_depth=6)
    started = time.monotonic()
    run = services.source_crawl_start(source=source)

    # The source page's progress endpoint shows the crawl while it runs and when it is done.
    browser = Client()
    browser.force_login(owner)
    seen_statuses = set()

    def finished():
        progress = json.loads(browser.get(f"/sources/{source.pk}/progress").content)
        seen_statuses.add(progress["run"]["status"])
        return progress if progress["run"]["status"] in {"done", "failed"} else None

    progress = wait_for(finished, timeout=900, interval=1, message="the crawl to finish")
    elapsed = time.monotonic() - started
    run.refresh_from_db()
    print(f"\nDRF site: {run.pages_fetched} pages, {run.chunks_embedded} chunks in {elapsed:.0f} s")

    assert progress["run"]["status"] == "done", progress
    assert seen_statuses & {"queued", "running", "indexing"}, "progress was visible before the end"
    # 70 sitemap entries: two are redirects to pages also linked, one has no main text
    assert run.pages_fetched >= 67
    assert progress["documents"]["ready"] >= 65 and progress["documents"]["pending"] == 0
    assert progress["documents"]["chunks"] == run.chunks_embedded > 1000
    assert run.pages_failed == len(run.report["failed"]) and all(item["reason"] for item in run.report["failed"])
    source.refresh_from_db()
    assert source.status == "ready"

    visitor = AsyncClient()  # one browser: its cookie ties the questions into one conversation
    conversation_id = None
    for question, page in QUESTIONS:
        events, chunk_count = ask(assistant.slug, question, conversation_id, client=visitor)
        names = [name for name, _ in events]
        assert names[0] == "meta" and names[-1] == "done" and "error" not in names
        assert chunk_count > 3, "the answer arrives as a stream, not in one piece"
        conversation_id = events[0][1]["conversation_id"]
        cited = [c["url"] for c in citations(events)]
        assert any(page in url for url in cited), (question, cited)
        assert all(url.startswith(drf_site) for url in cited)
        assert "[1]" in answer_text(events)

    stored = list(Message.objects.filter(conversation_id=conversation_id).order_by("id"))
    assert [m.role for m in stored] == ["user", "assistant"] * len(QUESTIONS)
    assert stored[1].provider == "extractive" and stored[1].citations and stored[1].timings["retrieve_ms"] > 0


def test_a_second_crawl_finds_every_page_unchanged(celery_worker_process, drf_site, drf_vectors):
    assistant = make_assistant()
    source = services.source_create_website(
        assistant=assistant, url=f"{drf_site}/api-guide/throttling/", max_pages=3, max_depth=1, whole_site=True
    )
    first = services.source_crawl_start(source=source)
    wait_for(lambda: CrawlRun.objects.get(pk=first.pk).status == "done", timeout=300, message="first crawl")
    chunks = sorted(Document.objects.filter(source=source).values_list("url", "chunk_count"))

    second = services.source_crawl_start(source=source)
    assert second.pk != first.pk
    wait_for(lambda: CrawlRun.objects.get(pk=second.pk).status == "done", timeout=300, message="second crawl")
    second.refresh_from_db()
    assert second.pages_fetched == 3 and second.pages_unchanged == 3
    assert sorted(Document.objects.filter(source=source).values_list("url", "chunk_count")) == chunks
