"""The handoff's summary by the assistant's model: a real local OpenAI-compatible server, the task run
as a worker would (eager), the extractive summary kept when the model fails."""

import pytest

from assistants.handoff import services
from assistants.models import Conversation, Handoff, Message
from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, openai_script
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation():
    conversation = Conversation.objects.create(assistant=make_assistant(), visitor_token="v" * 24)
    Message.objects.create(conversation=conversation, role="user", text="Do you ship to Norway?")
    Message.objects.create(conversation=conversation, role="assistant", text="I don't know.", unanswered=True)
    return conversation


def test_the_model_writes_the_summary_when_the_assistant_has_one(conversation, llm, eager_tasks):
    tokens = ["The visitor wants ", "shipping to Norway; ", "the assistant could not say."]
    with FakeServer([Reply(body=openai_script(tokens, 50, 12).full())]) as server:
        llm(server)
        services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="button")
    handoff = Handoff.objects.get()
    assert handoff.summary == "Visitor asked. The visitor wants shipping to Norway; the assistant could not say."
    assert handoff.summary_by == "gpt-test"
    sent = server.requests[0].json
    assert "Visitor: Do you ship to Norway?" in sent["messages"][-1]["content"]


def test_a_failing_model_leaves_the_extractive_summary(conversation, llm, eager_tasks):
    with FakeServer([Reply(status=500, headers={"Content-Type": "application/json"}, body=[b"{}"])]) as server:
        llm(server)
        services.handoff_request(conversation=conversation, reason="visitor_asked")
    handoff = Handoff.objects.get()
    assert server.requests and handoff.summary_by == "extractive"
    assert "Not answered: Do you ship to Norway?" in handoff.summary


def test_without_a_model_nothing_is_queued(conversation, settings):
    settings.LLM_BASE_URL = ""
    services.handoff_request(conversation=conversation, reason="visitor_asked")
    assert Handoff.objects.get().summary_by == "extractive"
