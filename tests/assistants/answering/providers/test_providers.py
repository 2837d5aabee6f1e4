"""The streaming LLM providers, against local servers that speak each API's wire format."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

import pytest

from assistants.answering.providers import (
    AnthropicProvider,
    ProviderConfig,
    ProviderError,
    Usage,
    provider_from_config,
    provider_from_settings,
)
from assistants.answering.providers import base as providers
from assistants.answering.providers.base import SSEEvent, SSEParser
from tests.assistants.answering.providers.fake_servers import SCRIPTS, FakeServer, Reply, anthropic_error, json_reply
from tests.servers import free_port

KINDS = ["openai", "anthropic", "gemini"]
MODELS = {"openai": "gpt-test", "anthropic": "claude-test", "gemini": "gemini-test"}
SYSTEM = "Answer from the passages only."
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "When are you open?"},
    {"role": "assistant", "content": "Which shop?"},
    {"role": "user", "content": "The one in Zürich."},
]
TOKENS = ["Our shop in Zürich ", "is open ", "9–17 ", "on weekdays. ☕"]
ANSWER = "".join(TOKENS)
PROMPT_TOKENS, COMPLETION_TOKENS = 42, 7


def script(kind: str):
    return SCRIPTS[kind](TOKENS, PROMPT_TOKENS, COMPLETION_TOKENS)


@pytest.fixture(autouse=True)
def loopback_allowed(settings, monkeypatch):
    """Let the outbound client reach the fake servers on 127.0.0.1, and keep retries quick."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = []
    monkeypatch.setattr(providers, "RETRY_BACKOFF", 0.01)


@pytest.fixture
def serve():
    """Start a FakeServer with the given replies; every server is stopped after the test."""
    servers: list[FakeServer] = []

    def start(*replies: Reply) -> FakeServer:
        server = FakeServer(list(replies)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def provider_for(kind: str, base: str, **overrides):
    base_url = f"{base}/v1" if kind == "openai" else base
    return provider_from_config(
        ProviderConfig(kind=kind, base_url=base_url, api_key="sk-test", model=MODELS[kind], **overrides)
    )


@dataclass
class Outcome:
    texts: list[str]
    usage: Usage | None
    error: ProviderError | None
    seconds: float


def consume(provider, messages=MESSAGES) -> Outcome:
    """Run the provider's stream to its end, collecting the text, the usage and any error."""

    async def main() -> Outcome:
        texts, usage, error = [], None, None
        started = time.monotonic()
        try:
            async for item in provider.stream(messages):
                if isinstance(item, Usage):
                    usage = item
                else:
                    assert usage is None, "text after the usage"
                    texts.append(item)
        except ProviderError as exc:
            error = exc
        return Outcome(texts, usage, error, time.monotonic() - started)

    return asyncio.run(main())


def split(pieces: list[bytes], size: int) -> list[bytes]:
    """The same bytes cut into pieces of ``size`` (splitting lines, CRLFs and UTF-8 characters)."""
    data = b"".join(pieces)
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- The SSE parser -----------------------------------------------------------------------------


def test_sse_parser_handles_any_line_ending_split_anywhere():
    stream = (
        "\ufeff: comment\r\n"
        "event: first\r\ndata: one\r\ndata: two\r\n\r\n"
        "data:no space\n\n"
        "data: caf\u00e9 \u2615\r\rid: 7\nretry: 10\ndata: {}\n\n"
        "event: lonely\n\n"
        "data: never finished\n"
    ).encode()
    parser = SSEParser()
    events = [event for i in range(len(stream)) for event in parser.feed(stream[i : i + 1])]
    assert events == [
        SSEEvent("first", "one\ntwo"),
        SSEEvent("message", "no space"),
        SSEEvent("message", "caf\u00e9 \u2615"),
        SSEEvent("message", "{}"),
    ]


def test_sse_parser_refuses_an_endless_line(monkeypatch):
    monkeypatch.setattr(providers, "MAX_LINE_CHARS", 10)
    with pytest.raises(ProviderError) as caught:
        SSEParser().feed(b"data: " + b"x" * 20)
    assert caught.value.kind == "bad_response"


# --- Requests and normal answers ----------------------------------------------------------------

EXPECTED_REQUESTS = {
    "openai": (
        "/v1/chat/completions",
        {"authorization": "Bearer sk-test"},
        {
            "model": "gpt-test",
            "messages": MESSAGES,
            "stream": True,
            "temperature": 0.2,
            "max_tokens": 800,
            "stream_options": {"include_usage": True},
        },
    ),
    "anthropic": (
        "/v1/messages",
        {"x-api-key": "sk-test", "anthropic-version": "2023-06-01", "content-type": "application/json"},
        {
            "model": "claude-test",
            "max_tokens": 800,
            "system": SYSTEM,
            "messages": MESSAGES[1:],
            "stream": True,
            "temperature": 0.2,
        },
    ),
    "gemini": (
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
        {"x-goog-api-key": "sk-test"},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "When are you open?"}]},
                {"role": "model", "parts": [{"text": "Which shop?"}]},
                {"role": "user", "parts": [{"text": "The one in Zürich."}]},
            ],
            "systemInstruction": {"parts": [{"text": SYSTEM}]},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 800},
        },
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_streams_the_answer_and_sends_the_exact_request(serve, kind):
    server = serve(Reply(body=script(kind).full()))

    outcome = consume(provider_for(kind, server.url))

    assert outcome.error is None
    assert outcome.texts == TOKENS
    assert outcome.usage == Usage(PROMPT_TOKENS, COMPLETION_TOKENS)
    [request] = server.requests
    path, headers, body = EXPECTED_REQUESTS[kind]
    assert request.method == "POST"
    assert request.path == path
    assert headers.items() <= request.headers.items()
    assert request.json == body
    other_credentials = {"authorization", "x-api-key", "x-goog-api-key"} - headers.keys()
    assert not other_credentials & request.headers.keys()


@pytest.mark.parametrize("kind", KINDS)
def test_reassembles_a_stream_delivered_in_tiny_pieces(serve, kind):
    server = serve(Reply(body=split(script(kind).full(), 5)))

    outcome = consume(provider_for(kind, server.url))

    assert outcome.error is None
    assert "".join(outcome.texts) == ANSWER
    assert outcome.usage == Usage(PROMPT_TOKENS, COMPLETION_TOKENS)


# --- Errors before the first token: retried -----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_with_retry_after_is_retried(serve, kind):
    server = serve(
        json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}),
        Reply(body=script(kind).full()),
    )

    outcome = consume(provider_for(kind, server.url))

    assert outcome.error is None
    assert "".join(outcome.texts) == ANSWER
    assert len(server.requests) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_persistent_rate_limit_reports_retry_after(serve, kind, monkeypatch):
    monkeypatch.setattr(providers, "MAX_RETRY_WAIT", 0.05)
    server = serve(json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}))

    outcome = consume(provider_for(kind, server.url, max_retries=2))

    assert outcome.texts == []
    assert outcome.error.kind == "rate_limited"
    assert outcome.error.retry_after == 7.0
    assert outcome.error.partial is False
    assert outcome.error.user_message == "The assistant is busy right now. Please try again in a moment."
    assert len(server.requests) == 3
    assert outcome.seconds < 2, "the wait between retries is capped by MAX_RETRY_WAIT"


@pytest.mark.parametrize("kind", KINDS)
def test_server_error_is_retried_then_reported_unavailable(serve, kind):
    server = serve(json_reply(500, {"error": {"message": "boom"}}))

    outcome = consume(provider_for(kind, server.url, max_retries=2))

    assert outcome.error.kind == "unavailable"
    assert outcome.error.partial is False
    assert "boom" not in outcome.error.user_message
    assert len(server.requests) == 3


def test_unreachable_server_is_unavailable():
    port = free_port()  # nothing listens there

    outcome = consume(provider_for("openai", f"http://127.0.0.1:{port}", max_retries=1))

    assert outcome.error.kind == "unavailable"


@pytest.mark.parametrize(
    ("status", "expected"), [(401, "auth"), (403, "auth"), (400, "bad_response"), (404, "bad_response")]
)
@pytest.mark.parametrize("kind", KINDS)
def test_client_errors_are_not_retried(serve, kind, status, expected):
    server = serve(json_reply(status, {"error": {"message": "no"}}))

    outcome = consume(provider_for(kind, server.url))

    assert outcome.error.kind == expected
    assert len(server.requests) == 1


def test_a_reply_that_is_not_an_event_stream_is_a_bad_response(serve):
    server = serve(json_reply(200, {"choices": [{"message": {"content": "not streamed"}}]}))

    outcome = consume(provider_for("openai", server.url))

    assert outcome.error.kind == "bad_response"
    assert len(server.requests) == 1


def test_private_address_is_refused_without_permission(serve, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    server = serve(Reply(body=script("openai").full()))

    outcome = consume(provider_for("openai", server.url))

    assert outcome.error.kind == "refused"
    assert server.requests == []


# --- Errors after the first token: never retried ------------------------------------------------


@pytest.mark.parametrize("finish", [False, True], ids=["connection-dropped", "body-ended"])
@pytest.mark.parametrize("kind", KINDS)
def test_stream_cut_after_some_tokens_is_partial_and_not_retried(serve, kind, finish):
    server = serve(Reply(body=script(kind).cut(2), finish=finish), Reply(body=script(kind).full()))

    outcome = consume(provider_for(kind, server.url))

    assert outcome.texts == TOKENS[:2]
    assert outcome.error.kind == "unavailable"
    assert outcome.error.partial is True
    assert outcome.error.user_message == "The answer was cut off. Please try again."
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_stall_mid_stream_times_out(serve, kind):
    server = serve(Reply(body=[*script(kind).cut(2), 30.0]))

    outcome = consume(provider_for(kind, server.url, stall_timeout=1.0))

    assert outcome.texts == TOKENS[:2]
    assert outcome.error.kind == "timeout"
    assert outcome.error.partial is True
    assert len(server.requests) == 1
    assert 0.9 < outcome.seconds < 5


def test_keep_alives_do_not_extend_the_overall_timeout(serve):
    server = serve(Reply(body=script("openai").prefix, trickle=True))

    outcome = consume(provider_for("openai", server.url, timeout=1.0))

    assert outcome.error.kind == "timeout"
    assert outcome.error.partial is False
    assert len(server.requests) == 1
    assert outcome.seconds < 5


@pytest.mark.parametrize("kind", KINDS)
def test_closing_the_stream_closes_the_upstream_connection(serve, kind):
    server = serve(Reply(body=script(kind).cut(2), trickle=True))

    async def read_one_then_leave() -> tuple[str, bool]:
        stream = provider_for(kind, server.url).stream(MESSAGES)
        first = await anext(stream)
        await stream.aclose()
        # Still inside the event loop, so nothing but aclose() can have closed the connection.
        gone = await asyncio.to_thread(server.client_gone.wait, 5)
        return first, gone

    first, gone = asyncio.run(read_one_then_leave())
    assert first == TOKENS[0]
    assert gone, "the server still had a reader after aclose()"


# --- Malformed lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_malformed_line_is_skipped_with_a_warning(serve, kind, caplog):
    events = script(kind).full()
    server = serve(Reply(body=[*events[:2], b"data: {not json\n\n", *events[2:]]))

    with caplog.at_level(logging.WARNING, logger="assistants.answering.providers"):
        outcome = consume(provider_for(kind, server.url))

    assert outcome.error is None
    assert "".join(outcome.texts) == ANSWER
    assert "not a JSON object" in caplog.text


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_of_garbage_is_a_bad_response(serve, kind):
    server = serve(Reply(body=[b"data: {oops\n\n", b"data: [1, 2\n\n"]))

    outcome = consume(provider_for(kind, server.url))

    assert outcome.error.kind == "bad_response"
    assert len(server.requests) == 1


# --- Errors reported inside the stream ----------------------------------------------------------


def test_anthropic_error_event_mid_stream_is_partial(serve):
    overloaded = anthropic_error("overloaded_error", "Overloaded")
    server = serve(Reply(body=[*script("anthropic").cut(2), overloaded]))

    outcome = consume(provider_for("anthropic", server.url))

    assert outcome.texts == TOKENS[:2]
    assert outcome.error.kind == "unavailable"
    assert outcome.error.partial is True
    assert "Overloaded" in str(outcome.error)
    assert len(server.requests) == 1


def test_anthropic_error_event_before_any_text_is_retried(serve):
    server = serve(
        Reply(body=[*script("anthropic").prefix, anthropic_error("overloaded_error", "Overloaded")]),
        Reply(body=script("anthropic").full()),
    )

    outcome = consume(provider_for("anthropic", server.url))

    assert outcome.error is None
    assert "".join(outcome.texts) == ANSWER
    assert len(server.requests) == 2


def test_openai_error_object_mid_stream_is_partial(serve):
    error = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    server = serve(Reply(body=[*script("openai").cut(2), error]))

    outcome = consume(provider_for("openai", server.url))

    assert outcome.texts == TOKENS[:2]
    assert outcome.error.kind == "unavailable"
    assert outcome.error.partial is True


# --- Configuration ------------------------------------------------------------------------------


def test_provider_from_settings(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = "claude-test"
    assert provider_from_settings() is None

    settings.LLM_BASE_URL = "https://api.anthropic.com"
    settings.LLM_MODEL = ""
    assert provider_from_settings() is None

    settings.LLM_MODEL = "claude-test"
    settings.LLM_API_KEY = "sk-test"
    settings.LLM_TIMEOUT = 12.5
    settings.LLM_PROVIDER = "anthropic"
    provider = provider_from_settings()
    assert isinstance(provider, AnthropicProvider)
    assert provider.config == ProviderConfig(
        kind="anthropic",
        base_url="https://api.anthropic.com",
        api_key="sk-test",
        model="claude-test",
        timeout=12.5,
    )

    settings.LLM_PROVIDER = ""  # unset: an OpenAI-compatible API
    assert provider_from_settings().name == "openai"


def test_unknown_provider_kind_is_refused():
    with pytest.raises(ValueError, match="unknown LLM provider"):
        provider_from_config(ProviderConfig(kind="palm", base_url="https://x", api_key="", model="m"))


# --- Hangs before the first token (the scale issue's faults) ------------------------------------


def test_a_server_that_accepts_and_never_answers_times_out_and_is_not_retried():
    """A connection that opens and then hangs (no status line ever): a clean timeout, within the deadline."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in range(4)], daemon=True).start()
    try:
        port = listener.getsockname()[1]
        outcome = consume(provider_for("openai", f"http://127.0.0.1:{port}", timeout=1.5, stall_timeout=1.0))
    finally:
        listener.close()
    assert outcome.texts == [] and outcome.error.kind == "timeout" and outcome.error.partial is False
    assert outcome.seconds < 4 and len(accepted) == 1, "a timeout is not retried"


@pytest.mark.parametrize("kind", KINDS)
def test_a_stall_before_the_first_token_is_a_timeout_not_an_endless_wait(serve, kind):
    server = serve(Reply(body=[30.0, *script(kind).full()]))

    outcome = consume(provider_for(kind, server.url, stall_timeout=1.0))

    assert outcome.texts == [] and outcome.error.kind == "timeout" and outcome.error.partial is False
    assert len(server.requests) == 1 and 0.9 < outcome.seconds < 5


def test_one_pooled_client_serves_answer_after_answer_on_kept_connections():
    """The providers share a client per process and event loop: a second answer reuses the connection."""
    from assistants.answering.providers.base import shared_client

    server = FakeServer([Reply(body=script("openai").full())], keep_alive=True).start()

    async def two_answers() -> tuple[list, object, object]:
        provider = provider_for("openai", server.url)
        texts = [[text async for text in provider.stream(MESSAGES) if isinstance(text, str)] for _ in range(2)]
        return texts, shared_client(), shared_client()

    try:
        texts, first, second = asyncio.run(two_answers())
    finally:
        server.stop()
    assert texts == [TOKENS, TOKENS] and first is second
    assert len(server.requests) == 2 and server.connections == 1, "the second answer reused the connection"


def test_every_answer_streaming_at_once_gets_its_own_connection_to_the_provider():
    """More answers at once than httpx's default pool (100): none waits for another one's connection."""
    from assistants.answering.providers.base import shared_client

    answers = 130
    server = FakeServer([Reply(body=[5.0, *script("openai").full()])], keep_alive=True).start()

    async def many_answers() -> int:
        provider = provider_for("openai", server.url)

        async def answer():
            return [text async for text in provider.stream(MESSAGES) if isinstance(text, str)]

        def answered(task) -> bool:
            return task.done() and not task.cancelled() and task.exception() is None

        tasks = [asyncio.create_task(answer()) for _ in range(answers)]
        # Every request reaches the model while the first replies still pause (with a pool of 100, the
        # 101st waits until an answer is over: the first one finishing ends this wait instead).
        while len(server.requests) < answers and not any(answered(task) for task in tasks):
            await asyncio.sleep(0.01)
        arrived = len(server.requests)
        for task in tasks:  # the visitors leave: their connections close
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await shared_client().aclose()
        return arrived

    try:
        assert asyncio.run(many_answers()) == answers
    finally:
        server.stop()
