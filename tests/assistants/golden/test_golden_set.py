"""The golden set: questions with the pages that answer them, collected from the team and from
visitors' thumbs-down answers and handoffs, evaluated per assistant from the dashboard."""

import pytest
from django.test import Client

from assistants.golden import selectors, services
from assistants.golden.evaluation import GoldenError, evaluate_golden_set
from assistants.models import Conversation, Feedback, GoldenQuestion, GoldenRun, Message
from assistants.tasks import golden_run_task
from ingestion.spaces import space_active, space_drop
from tests.factories import index_pages, make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db

BASE = "https://shop.example"
PAGE = "<html><head><title>{t}</title></head><body><main><h1>{t}</h1><p>{p}</p></main></body></html>"
PAGES = {
    f"{BASE}/returns/": PAGE.format(t="Returns", p="You can return any item within 30 days of delivery for a refund."),
    f"{BASE}/shipping/": PAGE.format(t="Shipping", p="Parcels leave our Lisbon warehouse within two working days."),
    f"{BASE}/warranty/": PAGE.format(t="Warranty", p="Every kettle carries a five year warranty against defects."),
}


@pytest.fixture
def owner():
    return make_user("golden-owner")


@pytest.fixture
def assistant(owner):
    assistant = make_assistant(make_team(owner, "Shop"), "Shop help")
    index_pages(assistant, PAGES)
    return assistant


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_expected_pages_must_be_pages_of_the_assistant(assistant):
    golden = services.golden_question_add(
        assistant=assistant,
        question="  How long do   I have to return an item? ",
        expected_urls=[f"{BASE}/returns#policy", ""],  # fragment and missing slash ignored; blank lines skipped
    )
    assert golden.question == "How long do I have to return an item?" and golden.expected_urls == [f"{BASE}/returns/"]
    with pytest.raises(GoldenError, match="Not a page of this assistant: https://elsewhere.example/returns/"):
        services.golden_question_add(
            assistant=assistant, question="Q?", expected_urls=["https://elsewhere.example/returns/"]
        )
    with pytest.raises(GoldenError, match="already in the golden set"):
        services.golden_question_add(assistant=assistant, question=golden.question, expected_urls=[f"{BASE}/returns/"])
    with pytest.raises(GoldenError, match="at most 500"):
        services.golden_question_add(assistant=assistant, question="x" * 501, expected_urls=[f"{BASE}/returns/"])
    with pytest.raises(GoldenError, match="one per line"):
        services.golden_question_add(assistant=assistant, question="Where?", expected_urls=[" "])


def test_a_folder_page_may_be_named_by_its_index_html(owner):
    # Sphinx and static sites link ".../index.html": the form refused those addresses (issue 26).
    assistant = make_assistant(make_team(owner, "Docs"), "Docs help")
    index_pages(
        assistant,
        {
            "https://docs.example/index.html": PAGE.format(t="Home", p="Start here with the tutorial pages."),
            "https://docs.example/admin/": PAGE.format(t="Admin", p="The admin site reads your models."),
        },
    )
    golden = services.golden_question_add(
        assistant=assistant,
        question="Where do I start?",
        expected_urls=["https://docs.example/", "https://docs.example/admin/index.html"],
    )
    assert golden.expected_urls == ["https://docs.example/index.html", "https://docs.example/admin/"]
    with pytest.raises(GoldenError, match="Not a page of this assistant"):
        services.golden_question_add(assistant=assistant, question="Q?", expected_urls=["https://docs.example/x.html"])


def test_the_evaluation_ranks_the_expected_pages_in_every_mode(assistant):
    for question, page in [
        ("How many days do I have to return an item for a refund?", "returns"),
        ("How long is the warranty on a kettle?", "warranty"),
        ("Where do parcels ship from?", "shipping"),
    ]:
        services.golden_question_add(assistant=assistant, question=question, expected_urls=[f"{BASE}/{page}/"])
    # Answerable, but the team pointed it at the wrong page: it must count as a miss at rank 1.
    services.golden_question_add(
        assistant=assistant, question="How long is the kettle warranty?", expected_urls=[f"{BASE}/shipping/"]
    )

    report = evaluate_golden_set(assistant)

    assert report["count"] == 4 and [m["mode"] for m in report["modes"]] == ["lexical", "dense", "hybrid"]
    hybrid = next(m for m in report["modes"] if m["mode"] == "hybrid")
    rows = {row["question"]: row for row in report["questions"]}
    for question in list(rows)[:3]:
        assert {r["mode"]: r["rank"] for r in rows[question]["ranks"]}["hybrid"] == 1, rows[question]
    wrong = rows["How long is the kettle warranty?"]
    assert {r["mode"]: r["rank"] for r in wrong["ranks"]}["hybrid"] > 1
    assert wrong["found"][0]["url"] == f"{BASE}/warranty/"  # what the assistant found instead
    # Three questions at rank 1, one lower (MRR of 1/rank), only three with the expected page in the answer.
    assert 0.75 < hybrid["mrr_10"] < 1.0 and hybrid["recall_10"] == 1.0
    rank = {r["mode"]: r["rank"] for r in wrong["ranks"]}["hybrid"]
    assert hybrid["mrr_10"] == pytest.approx((3 + 1 / rank) / 4, abs=1e-4)
    # "In the answer" counts what the visitor sees: the pages the answer cites. The three right
    # questions' answers cite their page; the misdirected one's does not cite shipping (it was
    # counted "in the answer" when it merely sat among the six passages a model is given).
    assert hybrid["in_answer"] == 0.75
    assert [r["cited"] for r in wrong["ranks"]] == [False] * 3
    assert all({r["mode"]: r["cited"] for r in rows[q]["ranks"]}["hybrid"] for q in list(rows)[:3])


def test_an_assistant_with_a_reranker_is_also_measured_reranked(assistant, settings):
    services.golden_question_add(
        assistant=assistant, question="How long is the warranty?", expected_urls=[f"{BASE}/warranty/"]
    )
    assistant.reranker_model = "no-such/reranker-for-tests"  # fails to load: the chat keeps the fused order
    assistant.save(update_fields=["reranker_model"])
    report = evaluate_golden_set(assistant)
    assert [m["mode"] for m in report["modes"]] == ["lexical", "dense", "hybrid", "reranked"]
    assert report["modes"][-1]["label"] == "Hybrid + reranker (no-such/reranker-for-tests)"
    assert report["modes"][-1]["mrr_10"] == report["modes"][2]["mrr_10"] == 1.0


def test_thumbs_down_answers_and_handoffs_become_candidates(assistant):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 30)
    Message.objects.create(conversation=conversation, role="user", text="Do you ship to the Azores?")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", text="Yes.", citations=[{"n": 1, "url": f"{BASE}/returns/"}]
    )
    Feedback.objects.create(conversation=conversation, message=answer, kind="rating", rating=-1)
    liked_q = Message.objects.create(conversation=conversation, role="user", text="Can I return a kettle?")
    liked = Message.objects.create(conversation=conversation, role="assistant", text="Within 30 days.")
    Feedback.objects.create(conversation=conversation, message=liked, kind="rating", rating=1)
    other = Conversation.objects.create(assistant=assistant, visitor_token="w" * 30)
    Message.objects.create(conversation=other, role="user", text="My kettle   broke, what now?")
    Feedback.objects.create(conversation=other, kind="contact", details={"email": "a@b.example"})
    stranger = make_assistant(name="Elsewhere")
    theirs = Conversation.objects.create(assistant=stranger, visitor_token="x" * 30)
    asked = Message.objects.create(conversation=theirs, role="user", text="Their question")
    Feedback.objects.create(conversation=theirs, kind="contact")

    candidates = selectors.golden_candidates(assistant=assistant)

    assert [(c["question"], c["origin"]) for c in candidates] == [
        ("My kettle broke, what now?", "handoff"),
        ("Do you ship to the Azores?", "thumbs_down"),
    ]
    assert candidates[1]["cited"] == [f"{BASE}/returns/"] and liked_q.text not in str(candidates)
    services.golden_question_add(
        assistant=assistant, question=candidates[0]["question"], expected_urls=[f"{BASE}/warranty/"], origin="handoff"
    )
    assert [c["question"] for c in selectors.golden_candidates(assistant=assistant)] == ["Do you ship to the Azores?"]
    assert asked.text not in str(selectors.golden_candidates(assistant=assistant))


def test_the_dashboard_adds_evaluates_and_shows_results(client, assistant):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 30)
    asked = Message.objects.create(conversation=conversation, role="user", text="<script>alert(1)</script> warranty?")
    answer = Message.objects.create(conversation=conversation, role="assistant", text="No idea.")
    Feedback.objects.create(conversation=conversation, message=answer, kind="rating", rating=-1)
    page = client.get(f"/assistants/{assistant.pk}/golden/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; warranty?" in page
    assert f'name="message_id" value="{asked.pk}"' in page

    response = client.post(
        f"/assistants/{assistant.pk}/golden/questions/",
        {
            "question": asked.text,
            "expected_urls": f"{BASE}/warranty/\n",
            "origin": "thumbs_down",
            "message_id": asked.pk,
        },
    )
    assert response.status_code == 302
    golden = GoldenQuestion.objects.get(assistant=assistant)
    assert (golden.origin, golden.message_id) == ("thumbs_down", asked.pk)
    refused = client.post(
        f"/assistants/{assistant.pk}/golden/questions/",
        {"question": "Where is it?", "expected_urls": "https://evil.example/"},
        follow=True,
    ).content.decode()
    assert "Not a page of this assistant" in refused and GoldenQuestion.objects.count() == 1

    client.post(f"/assistants/{assistant.pk}/golden/run/")
    run = GoldenRun.objects.get(assistant=assistant)
    assert run.status == "queued"
    assert "Running" in client.get(f"/assistants/{assistant.pk}/golden/").content.decode()
    client.post(f"/assistants/{assistant.pk}/golden/run/")
    assert GoldenRun.objects.count() == 1  # one at a time

    golden_run_task(run.pk)  # what the worker runs

    run.refresh_from_db()
    assert run.status == "done" and run.results["count"] == 1
    page = client.get(f"/assistants/{assistant.pk}/golden/").content.decode()
    assert 'data-mode="hybrid"' in page and "#1" in page and "Warranty" in page
    assert "<script>alert(1)" not in page

    client.post(f"/golden/{golden.pk}/delete/")
    assert not GoldenQuestion.objects.exists()


def test_an_empty_golden_set_or_an_empty_assistant_fails_with_a_reason(assistant):
    run = GoldenRun.objects.create(assistant=assistant)
    golden_run_task(run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "golden set is empty" in run.error
    bare = make_assistant(name="Bare")
    space_drop(space=space_active(bare.pk))
    with pytest.raises(GoldenError, match="no indexed content"):
        evaluate_golden_set(bare)


def test_another_team_cannot_see_or_change_the_golden_set(assistant):
    golden = services.golden_question_add(
        assistant=assistant, question="Warranty?", expected_urls=[f"{BASE}/warranty/"]
    )
    outsider = Client()
    outsider.force_login(make_user("golden-outsider"))
    assert outsider.get(f"/assistants/{assistant.pk}/golden/").status_code == 404
    assert outsider.post(f"/assistants/{assistant.pk}/golden/run/").status_code == 404
    assert (
        outsider.post(
            f"/assistants/{assistant.pk}/golden/questions/", {"question": "x", "expected_urls": BASE}
        ).status_code
        == 404
    )
    assert outsider.post(f"/golden/{golden.pk}/delete/").status_code == 404
    assert GoldenQuestion.objects.count() == 1 and not GoldenRun.objects.exists()
