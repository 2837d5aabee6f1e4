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


# --- Follow-ups: the conversation travels with the form (signed), nothing is stored ----------------


def ask_on(client, assistant, question: str, carried: str = ""):
    data = {"question": question, **({"history": carried} if carried else {})}
    return client.post(f"/assistants/{assistant.pk}/test/", data)


def nothing_stored():
    from assistants.models import DailyRollup, QuestionEmbedding

    return not (
        Conversation.objects.exists()
        or Message.objects.exists()
        or DailyRollup.objects.exists()
        or QuestionEmbedding.objects.exists()
    )


def test_a_follow_up_is_searched_with_the_conversation_and_shows_its_scores(crew_assistant):
    crew, assistant = crew_assistant
    client = Client()
    client.force_login(crew.user("member"))
    first = ask_on(client, assistant, "How long do refunds take to arrive?")
    carried = first.context["carried"]
    assert carried and 'name="history"' in first.content.decode() and "Ask a follow-up" in first.content.decode()
    assert first.context["question"] == ""  # the box waits for the next question

    follow = ask_on(client, assistant, "And gift cards?", carried)
    assert follow.status_code == 200
    trial = follow.context["trial"]
    # Without a model, the chat's own rule: a short follow-up is searched with the previous question.
    assert trial.query == "How long do refunds take to arrive? And gift cards?"
    assert any("A follow-up: searched as" in reason for reason in trial.reasons)
    assert any("gate asks for" in reason for reason in trial.reasons)
    assert "Gift cards cannot be refunded" in trial.answer and trial.citations
    first_passage = trial.passages[0]
    assert first_passage["title"] == "Refunds" and first_passage["lexical"] > 0 and first_passage["fused"] > 0
    html = follow.content.decode()
    assert "How long do refunds take to arrive?" in html and "five working days" in html  # the earlier turn
    assert "Start over" in html and "Retrieved passages for the follow-up" in html

    # Alone, the same words find nothing to rewrite: the conversation is what made it a follow-up.
    alone = ask_on(client, assistant, "And gift cards?").context["trial"]
    assert alone.query == "And gift cards?"
    assert nothing_stored(), "a trial conversation stores nothing"


def test_the_third_turn_carries_both_earlier_ones_and_start_over_forgets_them(crew_assistant):
    crew, assistant = crew_assistant
    client = Client()
    client.force_login(crew.user("owner"))
    one = ask_on(client, assistant, "How long do refunds take to arrive?")
    two = ask_on(client, assistant, "How fast is express delivery?", one.context["carried"])
    three = ask_on(client, assistant, "What fee?", two.context["carried"])
    assert [turn.role for turn in three.context["history"]] == ["user", "assistant", "user", "assistant"]
    assert three.context["trial"].query == "How fast is express delivery? What fee?"
    assert "twelve euros" in three.context["trial"].answer
    fresh = client.get(f"/assistants/{assistant.pk}/test/")  # what the Start over button asks for
    assert (
        fresh.context["history"] == []
        and fresh.context["trial"] is None
        and 'name="history"' not in (fresh.content.decode())
    )
    empty = ask_on(client, assistant, "   ", two.context["carried"])  # an error keeps the conversation
    assert empty.status_code == 400 and len(empty.context["history"]) == 4
    assert empty.context["carried"] == two.context["carried"]
    assert nothing_stored()


def test_a_conversation_not_signed_here_is_ignored(crew_assistant):
    from django.core import signing

    from assistants.web.sources import TRIAL_SALT

    crew, assistant = crew_assistant
    other = make_assistant(team=crew.team)
    client = Client()
    client.force_login(crew.user("member"))
    turns = [{"role": "user", "text": "How long do refunds take to arrive?"}, {"role": "assistant", "text": "Soon."}]
    forged = signing.dumps({"assistant": assistant.pk, "turns": turns}, salt=TRIAL_SALT).replace(":", ":x", 1)
    for carried in (forged, signing.dumps({"assistant": other.pk, "turns": turns}, salt=TRIAL_SALT), "junk"):
        response = ask_on(client, assistant, "And gift cards?", carried)
        assert response.context["history"] == [] and response.context["trial"].query == "And gift cards?"


def test_a_follow_up_is_rewritten_by_the_model_and_answered_with_the_conversation(crew_assistant, settings):
    from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, openai_script

    crew, assistant = crew_assistant
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = []
    first_answer = ["Refunds arrive within ", "five working days [1]."]
    rewrite = ['"Can gift cards ', 'be refunded?"']
    second_answer = ["No: gift cards cannot be refunded [1]."]
    replies = [Reply(body=openai_script(tokens, 50, 5).full()) for tokens in (first_answer, rewrite, second_answer)]
    client = Client()
    client.force_login(crew.user("member"))
    with FakeServer(replies) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url + "/v1", "gpt-test", "sk-test"
        one = ask_on(client, assistant, "How long do refunds take to arrive?")
        assert one.context["trial"].answer == "".join(first_answer)
        two = ask_on(client, assistant, "and gift cards?", one.context["carried"])
    assert len(server.requests) == 3  # answer, rewrite, answer
    rewrite_prompt = server.requests[1].json["messages"][-1]["content"]
    assert "Visitor: How long do refunds take to arrive?" in rewrite_prompt
    assert "Assistant: Refunds arrive within five working days [1]." in rewrite_prompt
    assert "Last message: and gift cards?" in rewrite_prompt
    answer_messages = server.requests[2].json["messages"]
    assert answer_messages[-3:] == [
        {"role": "user", "content": "How long do refunds take to arrive?"},
        {"role": "assistant", "content": "".join(first_answer)},
        {"role": "user", "content": "and gift cards?"},
    ]
    trial = two.context["trial"]
    assert trial.query == "Can gift cards be refunded?" and trial.answer == "".join(second_answer)
    assert trial.passages[0]["title"] == "Refunds" and trial.passages[0]["dense"] is not None
    assert nothing_stored()
