"""An assistant's own model, the usage and cost of each answer, its reranker, the page boost and
follow-up rewriting — through the real chat endpoint, the real database and embedder, with the
language models played by local servers that speak each API's exact wire format."""

import json
import re
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from assistants import services
from assistants.answering.grounding import cosine
from assistants.answering.retrieval import boost_page, retrieve, retrieve_with_evidence, widen_to_pages
from assistants.models import Message
from ingestion.embedding import get_embedder
from ingestion.search.hybrid import Hit, chunk_search
from ingestion.spaces import space_active
from tests.assistants.answering.providers.fake_servers import SCRIPTS, FakeServer, Reply, json_reply, openai_script
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant
from tests.sse import answer_text, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

THROTTLING = "http://docs.test/api-guide/throttling/"
PERMISSIONS = "http://docs.test/api-guide/permissions/"
ANSWER = ["Set ", "`DEFAULT_THROTTLE_RATES` ", "in your settings", " [1]", "."]
QUESTION = "How do I configure throttle rates?"


def page(url: str) -> str:
    return (DRF_SITE / url.removeprefix("http://docs.test/") / "index.html").read_text()


@pytest.fixture
def assistant():
    assistant = make_assistant()
    index_pages(assistant, {THROTTLING: page(THROTTLING)})
    return assistant


@pytest.fixture(autouse=True)
def no_default_model(settings):
    """No model in the settings: whatever answers was chosen by the assistant (or a test)."""
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.LLM_API_KEY = "sk-operator"
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = []


def ask(slug: str, question: str, *, conversation_id=None, page_url: str = "", client=None):
    """The events of one answer, asked the way the widget asks (with the host page's URL)."""
    client = client or AsyncClient()

    async def run():
        response = await client.post(
            f"/a/{slug}/chat",
            data=json.dumps({"question": question, "conversation_id": conversation_id, "page_url": page_url}),
            content_type="application/json",
        )
        assert response.status_code == 200
        return b"".join([chunk async for chunk in response.streaming_content])

    return parse_sse(async_to_sync(run)())


def prompt_links(request) -> list[str]:
    """The links of the numbered sources in the system prompt the model was sent, in order."""
    body = request.json
    system = body["system"] if "system" in body else body["messages"][0]["content"]
    return re.findall(r"^\[\d+\] .* \((\S+)\)$", system, flags=re.M)


# --- The assistant's own provider, usage and cost ---------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_the_assistants_own_model_answers_and_its_usage_and_cost_are_recorded(assistant, settings, kind):
    settings.LLM_PRICES = {"model-x": {"input": 2.0, "output": 8.0}}
    settings.LLM_API_KEY_ANTHROPIC = "sk-ant-operator"
    with FakeServer([Reply(body=SCRIPTS[kind](ANSWER, 900, 12).full())]) as server:
        base = server.url + "/v1" if kind == "openai" else server.url
        services.assistant_update(assistant=assistant, llm_provider=kind, llm_base_url=base, llm_model="model-x")
        events = ask(assistant.slug, QUESTION)
    assert answer_text(events) == "".join(ANSWER)
    request = server.requests[0]
    path = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "gemini": "/v1beta/models/model-x:"}[kind]
    assert request.path.startswith(path)
    assert request.json.get("model", "model-x") == "model-x"
    # The base URL was typed into the assistant: the operator's keys are not sent to it.
    key = (
        request.headers.get("authorization")
        or request.headers.get("x-api-key")
        or request.headers.get("x-goog-api-key")
    )
    assert key is None
    message = Message.objects.get(role="assistant")
    assert message.provider == kind
    assert message.usage == {
        "model": "model-x",
        "prompt_tokens": 900,
        "completion_tokens": 12,
        "cost_usd": pytest.approx(0.001896),
    }


def test_an_unpriced_model_records_tokens_without_a_cost(assistant, settings):
    settings.LLM_PRICES = {}
    with FakeServer([Reply(body=openai_script(ANSWER, 50, 5).full())]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.url + "/v1", "gpt-test"
        ask(assistant.slug, QUESTION)
    assert server.requests[0].headers["authorization"] == "Bearer sk-operator"  # the operator's own server
    assert Message.objects.get(role="assistant").usage == {
        "model": "gpt-test",
        "prompt_tokens": 50,
        "completion_tokens": 5,
    }


# --- Reranking ----------------------------------------------------------------------------------


def test_the_rerankers_order_is_what_the_model_sees(assistant, settings, tmp_path):
    from ingestion.search.rerank import get_reranker
    from tests.ingestion.search.tiny_rerankers import save_cross_encoder

    index_pages(
        assistant,
        {
            PERMISSIONS: page(PERMISSIONS),
            "http://docs.test/api-guide/caching/": page("http://docs.test/api-guide/caching/"),
        },
    )
    folder = str(save_cross_encoder("bert", tmp_path / "reranker"))
    services.assistant_update(assistant=assistant, reranker_model=folder)
    space = space_active(assistant.pk)
    vector = get_embedder(space.model_name).embed_queries([QUESTION])[0]
    candidates = chunk_search(space=space, query=QUESTION, vector=vector, k=settings.RERANK_CANDIDATES)
    scores = get_reranker(folder).score(QUESTION, [hit.text for hit in candidates])
    by_score = sorted(range(len(candidates)), key=lambda i: -scores[i])
    expected = [candidates[i].link for i in by_score[: settings.RETRIEVAL_TOP_K]]
    fused = [hit.link for hit in candidates[: settings.RETRIEVAL_TOP_K]]
    assert expected != fused  # the random reranker reorders: the test can tell the two apart

    with FakeServer([Reply(body=openai_script(ANSWER, 900, 12).full())]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.url + "/v1", "gpt-test"
        events = ask(assistant.slug, QUESTION)
    assert prompt_links(server.requests[0]) == expected
    cited = next(data["citations"] for name, data in events if name == "citations")
    assert cited[0]["url"] == expected[0]


def test_a_reranker_that_cannot_load_keeps_the_hybrid_order(assistant, tmp_path):
    hybrid = [hit.chunk_id for hit in retrieve(assistant, QUESTION)]
    services.assistant_update(assistant=assistant, reranker_model=str(tmp_path / "missing"))
    assert [hit.chunk_id for hit in retrieve(assistant, QUESTION)] == hybrid


# --- The page the visitor is on -----------------------------------------------------------------


def hits(*urls: str) -> list[Hit]:
    return [Hit(i, i, "text", [], "", url, "t") for i, url in enumerate(urls)]


def test_hits_from_the_visitors_page_move_up_a_little():
    ordered = hits(
        "https://s.test/a/", "https://s.test/b/", "https://s.test/c/", "https://s.test/d/", "https://s.test/e/"
    )
    boosted = boost_page(ordered, "https://www.s.test/d?utm_source=x#top", positions=2)
    assert [h.url[-2] for h in boosted] == ["a", "d", "b", "c", "e"]
    assert [h.url[-2] for h in boost_page(ordered, "https://s.test/b/", positions=2)] == ["b", "a", "c", "d", "e"]
    assert boost_page(ordered, "https://other.test/d/", positions=2) == ordered
    assert boost_page(ordered, "", positions=2) == ordered


def test_the_page_url_the_widget_sends_reorders_the_sources(assistant, settings):
    index_pages(assistant, {PERMISSIONS: page(PERMISSIONS)})
    with FakeServer([Reply(body=openai_script(ANSWER, 900, 12).full())]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.url + "/v1", "gpt-test"
        ask(assistant.slug, QUESTION)
        ask(assistant.slug, QUESTION, page_url="https://docs.test/api-guide/permissions/?ref=nav")
    plain, on_page = (prompt_links(request) for request in server.requests)
    assert plain[0].startswith(THROTTLING)
    first_permissions = next(i for i, link in enumerate(plain) if link.startswith(PERMISSIONS))
    assert on_page.index(next(link for link in on_page if link.startswith(PERMISSIONS))) == max(
        first_permissions - 2, 0
    )
    assert sorted(on_page) == sorted(plain)


# --- Up to ANSWER_MAX_PAGES distinct pages -------------------------------------------------------


def test_further_pages_are_added_by_their_best_chunk_after_the_top_passages():
    top = [Hit(1, 10, "t", [], "", "a", "t"), Hit(2, 10, "t", [], "", "a", "t"), Hit(3, 20, "t", [], "", "b", "t")]
    rest = [Hit(n, page, "t", [], "", str(page), "t") for n, page in ((4, 20), (5, 30), (6, 30), (7, 40), (8, 50))]
    assert [hit.chunk_id for hit in widen_to_pages(top, rest, 4)] == [1, 2, 3, 5, 7]
    assert [hit.chunk_id for hit in widen_to_pages(top, rest, 2)] == [1, 2, 3]  # the top passages stay
    assert [hit.chunk_id for hit in widen_to_pages(top, rest[:1], 5)] == [1, 2, 3]  # no page left


def test_an_answer_can_cite_more_pages_than_the_top_passages_span_but_the_gate_reads_those_alone(assistant, settings):
    index_pages(
        assistant,
        {
            url: page(url)
            for url in (PERMISSIONS, "http://docs.test/api-guide/caching/", "http://docs.test/api-guide/versioning/")
        },
    )
    settings.RETRIEVAL_TOP_K, settings.ANSWER_MAX_PAGES = 2, 4
    top = retrieve(assistant, QUESTION, 2)
    assert len({hit.document_id for hit in top}) < 4
    found = retrieve_with_evidence(assistant, QUESTION)
    assert [hit.chunk_id for hit in found.hits[:2]] == [hit.chunk_id for hit in top]
    assert len({hit.url for hit in found.hits}) == 4
    assert len(found.hits) == 2 + 4 - len({hit.document_id for hit in top})
    vectors = found.sources.get()
    assert len(vectors) == len(found.hits)
    similarities = [cosine(vector, found.vector) for vector in vectors]
    assert found.evidence.similarity == pytest.approx(max(similarities[:2]), abs=1e-4)
    settings.ANSWER_MAX_PAGES = 0
    assert [hit.chunk_id for hit in retrieve_with_evidence(assistant, QUESTION).hits] == [h.chunk_id for h in top]


# --- Follow-up rewriting ------------------------------------------------------------------------

REWRITTEN = "How do I set throttle rates for authenticated users?"


def converse(assistant, settings, rewrite_reply: Reply) -> tuple[FakeServer, Message, float]:
    """A first question, then the follow-up "and per user?" whose rewrite gets ``rewrite_reply``."""
    answer = Reply(body=openai_script(ANSWER, 900, 12).full())
    client = AsyncClient()
    with FakeServer([answer, rewrite_reply, answer]) as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.url + "/v1", "gpt-test"
        events = ask(assistant.slug, "How do I throttle users?", client=client)
        started = time.monotonic()
        ask(assistant.slug, "and per user?", conversation_id=events[0][1]["conversation_id"], client=client)
        seconds = time.monotonic() - started
    return server, Message.objects.filter(role="assistant").last(), seconds


def test_a_follow_up_is_rewritten_by_the_model_before_searching(assistant, settings):
    rewrite = Reply(body=openai_script(['"How do I set throttle rates ', 'for authenticated users?"'], 80, 11).full())
    server, message, _ = converse(assistant, settings, rewrite)
    assert len(server.requests) == 3  # answer, rewrite, answer: the first question is not rewritten
    request = server.requests[1].json
    assert request["max_tokens"] == 64 and request["temperature"] == 0.0
    prompt = request["messages"][-1]["content"]
    assert "Visitor: How do I throttle users?" in prompt and "Last message: and per user?" in prompt
    assert message.grounding["retrieval"]["query"] == REWRITTEN
    assert server.requests[2].json["messages"][-1] == {"role": "user", "content": "and per user?"}


def test_a_failed_rewrite_falls_back_to_the_simple_rule(assistant, settings):
    server, message, _ = converse(assistant, settings, json_reply(500, {"error": {"message": "down"}}))
    assert len(server.requests) == 3  # no retry of the rewrite
    assert message.grounding["retrieval"]["query"] == "How do I throttle users? and per user?"
    assert message.text == "".join(ANSWER)


def test_a_slow_rewrite_is_abandoned_quickly(assistant, settings):
    settings.QUERY_REWRITE_TIMEOUT = 0.5
    slow = Reply(body=[9.0, *openai_script(["never"], 1, 1).full()])
    server, message, seconds = converse(assistant, settings, slow)
    assert message.grounding["retrieval"]["query"] == "How do I throttle users? and per user?"
    # Given up after the 0.5 s allowed, long before the server's 9 s (measured inside the answer,
    # so a loaded test machine does not count).
    assert message.timings["rewrite_ms"] < 3000 and seconds < 9.0, message.timings
    assert message.text == "".join(ANSWER)
