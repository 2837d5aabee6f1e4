"""How many queries one chat turn costs the database, pinned: every web process runs them for every
question, so a query added to the turn is seen here (and must be worth its CPU: docs/benchmarks.md,
bench-load). Through the real chat endpoint, the real database and embedder, the model played by a
local server speaking the OpenAI streaming format."""

import threading
from contextlib import contextmanager

import pytest
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import AsyncClient

from assistants.models import Message
from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, openai_script
from tests.assistants.answering.test_answering_options import THROTTLING, ask, page
from tests.factories import index_pages, make_assistant
from tests.sse import answer_text

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = ["Set ", "`DEFAULT_THROTTLE_RATES` ", "in your settings", " [1]", "."]
QUESTION = "How do I configure throttle rates?"
#: A new conversation: the assistant (with its handoff settings), the conversation made, the active
#: space; the question stored (insert, the conversation's updated_at, the team's webhooks); hybrid search
#: (BM25, the HNSW settings, the vectors, the chunks' rows) and the hits' stored vectors; the answer
#: stored (insert, updated_at, webhooks).
NEW_CONVERSATION_QUERIES = 14
#: A follow-up: the visitor's conversation read instead of made, and its history.
FOLLOW_UP_QUERIES = 15


@contextmanager
def queries_of_every_thread():
    """The SQL of every query run meanwhile, in this thread or another (the chat's database thread, a
    connection opened again after the pipeline handed its one back to the pool)."""
    seen: list[str] = []
    lock = threading.Lock()
    wrapped = []

    def wrapper(execute, sql, params, many, context):
        with lock:
            seen.append(sql)
        return execute(sql, params, many, context)

    def attach(sender=None, connection=None, **kwargs):
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(wrapper)
            wrapped.append(connection)

    connection_created.connect(attach, weak=False)
    for connection in connections.all(initialized_only=True):
        attach(connection=connection)
    try:
        yield seen
    finally:
        connection_created.disconnect(attach)
        for connection in wrapped:
            if wrapper in connection.execute_wrappers:
                connection.execute_wrappers.remove(wrapper)


@pytest.fixture
def assistant():
    assistant = make_assistant()
    index_pages(assistant, {THROTTLING: page(THROTTLING)})
    return assistant


def test_one_chat_turn_runs_a_fixed_number_of_queries(assistant, llm):
    visitor = AsyncClient()
    with FakeServer([Reply(body=openai_script(ANSWER, 900, 12).full())], keep_alive=True) as server:
        llm(server)
        ask(assistant.slug, QUESTION)  # the process warm (its model loaded, its client made)
        with queries_of_every_thread() as first:
            events = ask(assistant.slug, QUESTION, client=visitor)
        conversation_id = events[0][1]["conversation_id"]
        with queries_of_every_thread() as follow_up:
            events = ask(assistant.slug, "And per user?", conversation_id=conversation_id, client=visitor)
    assert answer_text(events) == "".join(ANSWER)
    assert events[0][1]["conversation_id"] == conversation_id
    assert Message.objects.filter(conversation_id=conversation_id).count() == 4
    assert len(first) == NEW_CONVERSATION_QUERIES, "\n".join(first)
    assert len(follow_up) == FOLLOW_UP_QUERIES, "\n".join(follow_up)
