"""The full-page assistant with an OpenAI-compatible provider: a local server that streams
chat-completion chunks exactly as the real API does."""

import pytest

from assistants.models import Message
from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, json_reply, openai_script
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant
from tests.sse import answer_text, ask, citations

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = ["Set ", "`DEFAULT_THROTTLE_RATES` ", "in your settings", " [1]", "."]


@pytest.fixture
def assistant():
    assistant = make_assistant()
    index_pages(
        assistant,
        {"http://docs.test/api-guide/throttling/": (DRF_SITE / "api-guide/throttling/index.html").read_text()},
    )
    return assistant


def test_the_answer_streams_from_the_provider_with_citations(assistant, llm):
    with FakeServer([Reply(body=openai_script(TOKENS, 900, 12).full())]) as server:
        llm(server)
        events, _ = ask(assistant.slug, "How do I configure throttle rates?")
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json["stream"] is True and request.json["model"] == "gpt-test"
    system = request.json["messages"][0]
    assert system["role"] == "system" and "[1]" in system["content"] and "Throttling" in system["content"]
    assert request.json["messages"][-1] == {"role": "user", "content": "How do I configure throttle rates?"}

    # The first piece at once; the rest came within ANSWER_EVENT_INTERVAL_MS of it: one event.
    assert [data["text"] for name, data in events if name == "token"] == [TOKENS[0], "".join(TOKENS[1:])]
    cited = citations(events)
    assert [c["n"] for c in cited] == [1]
    assert cited[0]["url"].startswith("http://docs.test/api-guide/throttling/")
    message = Message.objects.filter(role="assistant").get()
    assert message.text == "".join(TOKENS) and message.provider == "openai"
    assert message.timings["input_tokens"] == 900 and message.timings["output_tokens"] == 12


def test_a_provider_outage_shows_a_clear_message_and_offers_a_human(assistant, llm):
    with FakeServer([json_reply(500, {"error": {"message": "upstream exploded"}})]) as server:
        llm(server)
        events, _ = ask(assistant.slug, "How do I configure throttle rates?")
    errors = [data for name, data in events if name == "error"]
    assert len(errors) == 1 and errors[0]["offer_human"] is True
    assert "unavailable" in errors[0]["message"].lower() and "exploded" not in errors[0]["message"]
    assert answer_text(events) == ""
    assert events[-1][0] == "done"
    assert Message.objects.filter(role="assistant").get().error == "unavailable"
