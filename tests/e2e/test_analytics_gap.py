"""The content-gap loop end to end on a real worker: visitors ask what the content does not cover and
get "I don't know"; the questions are embedded and grouped into a topic, which becomes a gap of kind
"no page covers it"; the team adds the proposed Q&A pair from the gap's page; once it is indexed the
questions are asked again through the answering pipeline and the gap closes, each question answered
from the new pair."""

import pytest
from django.test import Client
from django.urls import reverse

from assistants.analytics import services as analytics_services
from assistants.models import ContentGap, Conversation, QuestionEmbedding, TopicBuild
from tests.conftest import wait_for
from tests.factories import index_pages, make_assistant, make_team, make_user
from tests.sse import ask

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    "https://shop.example/install": "<html><head><title>Installing the app</title></head><body><main><h1>Installing the app</h1>"
    "<p>Download the installer from the downloads page and run it. The installer asks for an administrator password "
    "and then copies the application into your programs folder.</p><p>Updates install themselves every week.</p></main></body></html>",
    "https://shop.example/shipping": "<html><head><title>Shipping</title></head><body><main><h1>Shipping</h1>"
    "<p>Orders ship within two business days from our warehouse in Lyon. Tracking numbers are emailed when the parcel "
    "leaves the warehouse.</p><p>Shipping is free above 50 euros.</p></main></body></html>",
}
QUESTIONS = ["Do you offer a discount for students?", "Is there a student discount?"]


def test_a_gap_closes_after_its_qa_pair_is_added(celery_worker_process):
    owner = make_user()
    assistant = make_assistant(make_team(owner))
    index_pages(assistant, PAGES)

    for question in QUESTIONS:
        events, _ = ask(assistant.slug, question)
        done = next(data for name, data in events if name == "done")
        assert done["unanswered"] is True, events
    # Each question was embedded once, by the worker, after it was stored.
    wait_for(lambda: QuestionEmbedding.objects.filter(assistant=assistant).count() == 2, 60, message="the embeddings")

    today = Conversation.objects.filter(assistant=assistant).first().created_at.date()
    build = analytics_services.topics_build_queue(assistant=assistant, start=today, end=today)
    wait_for(lambda: TopicBuild.objects.filter(pk=build.pk, status="done").exists(), 120, message="the topic build")
    gap = ContentGap.objects.get(assistant=assistant)
    assert gap.kind == ContentGap.Kind.NO_PAGE and gap.status == ContentGap.Status.OPEN
    assert gap.visitors == 2 and gap.questions == 2 and gap.unanswered == 2
    assert sorted(gap.checks.values_list("text", flat=True)) == sorted(QUESTIONS)
    assert gap.proposal["qa"]["question"] in QUESTIONS

    browser = Client()
    browser.force_login(owner)
    page = browser.get(reverse("gap_detail", args=[gap.pk]))
    assert page.status_code == 200 and b"No page covers it" in page.content
    response = browser.post(
        reverse("gap_qa_add", args=[gap.pk]),
        {
            "question": "Do you offer a student discount?",
            "answer": "Yes: students get a 20 percent discount on every order with a valid student card.",
        },
    )
    assert response.status_code == 302

    def closed():
        gap.refresh_from_db()
        return gap.status == ContentGap.Status.CLOSED

    wait_for(closed, 180, interval=1, message="the re-check to close the gap")
    checks = list(gap.checks.all())
    assert all(check.answered for check in checks)
    assert all(check.source_title == "Do you offer a student discount?" for check in checks)
    assert all(check.source_url.endswith("/qa.txt") for check in checks)
    # The re-check's own conversations are removed: they count in no figure.
    assert Conversation.objects.filter(assistant=assistant).count() == 2
    page = browser.get(reverse("gap_detail", args=[gap.pk]))
    assert b"every question is answered now" in page.content
