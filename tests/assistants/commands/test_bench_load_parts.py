"""bench_load's parts against the real thing: the load generator's visitor (``assistants.loadtest.visitor``)
reads the chat's event stream from the product under a real uvicorn, answering with the fake model
(``assistants.loadtest.fake_model``, a real process speaking the OpenAI streaming format) — an answer read
to its end, a visitor who leaves (and the model sees the call cancelled), and each kind of failure the
bench counts."""

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from assistants.loadtest.visitor import visit
from tests.conftest import DRF_SITE, REPO, wait_for
from tests.factories import index_pages, make_assistant
from tests.live_server import start_uvicorn, stop
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = json.dumps({"question": "How do I configure throttle rates?"}).encode()


@pytest.fixture(scope="module")
def model():
    """The fake model: 50 ms to the first token, then 60 tokens at 20 a second (3 s an answer: time enough for
    a departure to reach it on a busy machine)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "assistants.loadtest.fake_model", "--port", str(port), "--ttft", "0.05"]
        + ["--rate", "20", "--tokens", "60"],
        cwd=REPO,
    )
    stats = f"http://127.0.0.1:{port}/stats"

    def up():
        try:
            return httpx.get(stats, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, message="the fake model")
    yield port, lambda: httpx.get(stats, timeout=5).json()
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def web(model, django_db_setup, django_db_blocker):
    port, _ = model
    process, base = start_uvicorn(
        "bench-load-parts-uvicorn.log",
        LLM_PROVIDER="openai",
        LLM_BASE_URL=f"http://127.0.0.1:{port}/v1",
        LLM_MODEL="load",
        LLM_API_KEY="load",
    )
    yield int(base.rpartition(":")[2])
    stop(process)


@pytest.fixture
def slug():
    assistant = make_assistant()
    page = (DRF_SITE / "api-guide/throttling/index.html").read_text()
    index_pages(assistant, {"http://docs.test/api-guide/throttling/": page})
    return assistant.slug


def ask(port: int, path: str, *, leave_after: float | None = None, timeout: float = 60):
    return asyncio.run(visit("127.0.0.1", port, path, QUESTION, headers={}, leave_after=leave_after, timeout=timeout))


def test_a_visitor_reads_the_answer_to_its_end(model, web, slug):
    _, stats = model
    before = stats()
    seen = ask(web, f"/a/{slug}/chat")
    assert seen.outcome == "done"
    assert 0.05 < seen.first_token < 30  # the model's own 50 ms at least
    after = stats()
    assert after["requests"] - before["requests"] == 1 and after["finished"] - before["finished"] == 1


def test_a_visitor_who_leaves_closes_the_stream_and_the_model_call_is_cancelled(model, web, slug):
    _, stats = model
    before = stats()
    seen = ask(web, f"/a/{slug}/chat", leave_after=0.1)
    assert seen.outcome == "departed" and seen.first_token is not None
    wait_for(lambda: stats()["cancelled"] - before["cancelled"] == 1, timeout=10, message="the upstream cancelled")
    assert stats()["finished"] == before["finished"]


def test_each_failure_is_named(web, slug):
    assert ask(web, "/a/no-such-assistant/chat").outcome == "http 404"
    timed_out = ask(web, f"/a/{slug}/chat", timeout=0.02)  # less than the model's 50 ms to its first token
    assert timed_out.outcome == "timeout" and timed_out.first_token is None
    assert ask(free_port(), f"/a/{slug}/chat").outcome == "ConnectionRefusedError"
