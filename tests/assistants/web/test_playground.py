"""The Test tab: an answer with its passages and their lexical, dense and fused scores, and why it was
or was not given; nothing stored (no conversation, no message: nothing counts in the analytics)."""

import pytest
from django.test import Client

from assistants.models import Conversation, Message
from tests.factories import index_pages, make_assistant
from tests.roles import make_crew

pytestmark = pytest.mark.django_db

REFUNDS = (
    "<html><head><title>Refunds</title></head><body><main><h1>Refunds</h1><h2>How to ask for a refund</h2>"
    "<p>Write to billing within 30 days of your purchase and we refund the full price to your card. Refunds "
    "arrive within five working days. Gift cards cannot be refunded. Keep your order number at hand.</p>"
    "</main></body></html>"
)
SHIPPING = (
    "<html><head><title>Shipping</title></head><body><main><h1>Shipping</h1><h2>Delivery times</h2>"
    "<p>Parcels leave the warehouse every morning and reach most addresses in two days. Express delivery "
    "arrives the next day for a fee of twelve euros. We ship to every country of the European Union.</p>"
    "</main></body></html>"
)


@pytest.fixture
def crew_assistant():
    crew = make_crew()
    assistant = make_assistant(team=crew.team)
    index_pages(
        assistant, {"https://shop.example.com/refunds/": REFUNDS, "https://shop.example.com/shipping/": SHIPPING}
    )
    return crew, assistant


def ask(user, assistant, question: str):
    client = Client()
    client.force_login(user)
    return client.post(f"/assistants/{assistant.pk}/test/", {"question": question})


def test_an_answer_comes_with_its_passages_scores_and_reasons(crew_assistant):
    crew, assistant = crew_assistant
    response = ask(crew.user("member"), assistant, "How long do refunds take to arrive?")
    assert response.status_code == 200
    trial = response.context["trial"]
    assert not trial.unanswered and trial.verdict.startswith("Answered")
    assert "five working days" in trial.answer and trial.citations
    first = trial.passages[0]
    assert first["title"] == "Refunds" and first["lexical"] > 0 and 0 < first["dense"] <= 1 and first["fused"] > 0
    assert first["cited"] and any("similarity" in reason for reason in trial.reasons)
    html = response.content.decode()
    assert "Retrieved passages" in html and "How to ask for a refund" in html and "Keyword" in html
    assert not Conversation.objects.exists() and not Message.objects.exists(), "nothing is stored"


def test_a_question_the_content_cannot_answer_says_why(crew_assistant):
    crew, assistant = crew_assistant
    trial = ask(
        crew.user("owner"), assistant, "Which programming language is the kernel scheduler written in?"
    ).context["trial"]
    assert trial.unanswered and trial.verdict.startswith("Not answered")
    assert "gate asks for" in trial.reasons[0]
    assert not Conversation.objects.exists()


def test_an_empty_question_errs_at_its_field_and_an_assistant_without_content_says_so(crew_assistant):
    crew, _ = crew_assistant
    response = ask(crew.user("admin"), make_assistant(team=crew.team), "")
    assert response.status_code == 400 and "Type a question first" in response.content.decode()
    trial = ask(crew.user("admin"), make_assistant(team=crew.team), "Anything?").context["trial"]
    assert trial.unanswered and "no indexed content" in trial.verdict and trial.passages == []


def test_hostile_text_in_a_passage_is_shown_as_text(crew_assistant):
    crew, assistant = crew_assistant
    index_pages(
        assistant,
        {
            "https://shop.example.com/returns/": REFUNDS.replace(
                "Keep your order number at hand.",
                "Keep your order number at hand. <b>&lt;script&gt;alert(1)&lt;/script&gt;</b>",
            )
        },
    )
    html = ask(crew.user("member"), assistant, "How do I get my money back for a purchase?").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_with_a_reranker_the_fused_and_reranker_scores_are_both_shown(crew_assistant, tmp_path):
    from assistants import services
    from tests.ingestion.search.tiny_rerankers import save_cross_encoder

    crew, assistant = crew_assistant
    folder = str(save_cross_encoder("bert", tmp_path / "reranker"))
    services.assistant_update(assistant=assistant, reranker_model=folder)
    response = ask(crew.user("member"), assistant, "How long do refunds take to arrive?")
    trial = response.context["trial"]
    assert trial.reranked and all(p["rerank"] is not None and p["fused"] is not None for p in trial.passages)
    reranker_scores = [p["rerank"] for p in trial.passages]
    assert reranker_scores == sorted(reranker_scores, reverse=True)  # the reranker orders them
    assert "Reranker" in response.content.decode() and any("reranker" in r for r in trial.reasons)
