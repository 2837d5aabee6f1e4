"""The Gemini and OpenAI-compatible embedding engines against local servers that speak their wire
formats (tests/ingestion/embedding/fake_embedding_servers.py)."""

import email.utils
import time

import numpy as np
import pytest

from chatsite.lib.http import OutboundRefused
from ingestion.embedding import api as embedding_api
from ingestion.embedding.api import EmbeddingAPIError, GeminiEmbedder, OpenAIEmbedder, api_embedder

from .fake_embedding_servers import Answer, FakeEmbeddingServer, Reply, error_reply, fake_vector

GEMINI_PATH = "/v1beta/models/gemini-embedding-001:batchEmbedContents"


@pytest.fixture(autouse=True)
def loopback_allowed(settings, monkeypatch):
    """Let the outbound client reach the fake servers, keep retries quick, start every test with
    fresh engines."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.GEMINI_API_KEY = "gemini-key"
    settings.EMBEDDING_API_KEY = "openai-key"
    settings.EMBEDDING_API_INPUT_TYPE = False
    monkeypatch.setattr(embedding_api, "RETRY_BACKOFF", 0.01)
    api_embedder.cache_clear()
    yield
    api_embedder.cache_clear()


@pytest.fixture
def gemini(settings):
    """A Gemini fake, running, with GEMINI_BASE_URL pointing at it; call it with a script."""
    servers = []

    def start(*script):
        server = FakeEmbeddingServer("gemini", list(script)).__enter__()
        servers.append(server)
        settings.GEMINI_BASE_URL = server.url
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def openai(settings):
    """An OpenAI-compatible fake (64 dimensions unless asked), with EMBEDDING_API_BASE_URL on it."""
    servers = []

    def start(*script, default_dims=64):
        server = FakeEmbeddingServer("openai", list(script), default_dims=default_dims).__enter__()
        servers.append(server)
        settings.EMBEDDING_API_BASE_URL = f"{server.url}/v1"
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def expected(texts, dims):
    vectors = np.array([fake_vector(text, dims) for text in texts])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# --- names ---------------------------------------------------------------------------------


def test_names_are_parsed_into_engines():
    gemini = api_embedder("gemini:gemini-embedding-001")
    assert isinstance(gemini, GeminiEmbedder)
    assert (gemini.name, gemini.model, gemini.dims, gemini.max_length) == (
        "gemini:gemini-embedding-001",
        "gemini-embedding-001",
        3072,
        2048,
    )
    assert api_embedder("gemini:gemini-embedding-001@768").dims == 768
    bge = api_embedder("openai:BAAI/bge-base-en-v1.5@768")
    assert isinstance(bge, OpenAIEmbedder)
    assert (bge.name, bge.model, bge.dims, bge.max_length) == (
        "openai:BAAI/bge-base-en-v1.5@768",
        "BAAI/bge-base-en-v1.5",
        768,
        8192,
    )
    assert api_embedder("openai:text-embedding-3-small") is api_embedder("openai:text-embedding-3-small")


@pytest.mark.parametrize(
    "name", ["gemini:gemini-embedding-001@1000", "openai:model@x", "openai:model@0", "openai:", "cohere:embed-v4"]
)
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError):
        api_embedder(name)


def test_token_counts_are_estimates_from_the_length():
    assert api_embedder("openai:m@8").count_tokens(["", "abcd", "a" * 400]) == [1, 2, 101]


# --- Gemini ----------------------------------------------------------------------------------


def test_gemini_sends_the_exact_request_for_documents_and_queries(gemini):
    server = gemini()
    engine = api_embedder("gemini:gemini-embedding-001@768")

    documents = engine.embed_documents(["first chunk", "second chunk"])
    queries = engine.embed_queries(["a question"])

    assert [(r.method, r.path) for r in server.requests] == [("POST", GEMINI_PATH)] * 2
    assert server.requests[0].headers["x-goog-api-key"] == "gemini-key"
    assert server.requests[0].headers["content-type"] == "application/json"
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].json == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "taskType": "RETRIEVAL_DOCUMENT",
                "outputDimensionality": 768,
            }
            for text in ["first chunk", "second chunk"]
        ]
    }
    assert [r["taskType"] for r in server.requests[1].json["requests"]] == ["RETRIEVAL_QUERY"]
    assert documents.dtype == np.float32 and documents.shape == (2, 768)
    np.testing.assert_allclose(documents, expected(["first chunk", "second chunk"], 768), atol=1e-6)
    np.testing.assert_allclose(queries, expected(["a question"], 768), atol=1e-6)


@pytest.mark.parametrize("dims", [768, 1536, 3072])
def test_gemini_vectors_are_unit_length_at_every_size(gemini, dims):
    server = gemini()
    name = f"gemini:gemini-embedding-001@{dims}" if dims != 3072 else "gemini:gemini-embedding-001"

    vectors = api_embedder(name).embed_documents(["one", "two", "three"])

    assert server.requests[0].json["requests"][0]["outputDimensionality"] == dims
    assert vectors.shape == (3, dims)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_gemini_sends_at_most_100_texts_per_call(gemini):
    server = gemini()
    texts = [f"text number {i}" for i in range(250)]

    vectors = api_embedder("gemini:gemini-embedding-001@768").embed_documents(texts)

    assert [len(r.json["requests"]) for r in server.requests] == [100, 100, 50]
    np.testing.assert_allclose(vectors, expected(texts, 768), atol=1e-6)


def test_batches_also_respect_the_token_budget(gemini):
    server = gemini()
    texts = ["x" * 396] * 5  # 100 estimated tokens each

    api_embedder("gemini:gemini-embedding-001@768").embed_documents(texts, batch_tokens=250)

    assert [len(r.json["requests"]) for r in server.requests] == [2, 2, 1]


def test_no_texts_make_no_request(gemini):
    server = gemini()

    assert api_embedder("gemini:gemini-embedding-001@768").embed_documents([]).shape == (0, 768)
    assert server.requests == []


def test_gemini_without_a_key_is_an_error(gemini, settings):
    server = gemini()
    settings.GEMINI_API_KEY = ""

    with pytest.raises(EmbeddingAPIError, match="GEMINI_API_KEY"):
        api_embedder("gemini:gemini-embedding-001").embed_queries(["q"])
    assert server.requests == []


# --- OpenAI-compatible -------------------------------------------------------------------------


def test_openai_sends_the_exact_request(openai):
    server = openai()
    engine = api_embedder("openai:text-embedding-3-small")

    vectors = engine.embed_documents(["alpha", "beta"])
    engine.embed_queries(["gamma"])

    assert [(r.method, r.path) for r in server.requests] == [("POST", "/v1/embeddings")] * 2
    assert server.requests[0].headers["authorization"] == "Bearer openai-key"
    assert server.requests[0].json == {
        "model": "text-embedding-3-small",
        "input": ["alpha", "beta"],
        "encoding_format": "float",
    }
    assert server.requests[1].json == {
        "model": "text-embedding-3-small",
        "input": ["gamma"],
        "encoding_format": "float",
    }
    assert engine.dims == 64  # learnt from the first response, no further request
    assert len(server.requests) == 2
    np.testing.assert_allclose(vectors, expected(["alpha", "beta"], 64), atol=1e-6)


def test_openai_asks_for_the_configured_dimensions(openai):
    server = openai()

    vectors = api_embedder("openai:BAAI/bge-m3@256").embed_documents(["alpha"])

    assert server.requests[0].json["model"] == "BAAI/bge-m3"
    assert server.requests[0].json["dimensions"] == 256
    assert vectors.shape == (1, 256)


def test_openai_marks_queries_only_when_the_server_understands_it(openai, settings):
    server = openai()
    settings.EMBEDDING_API_INPUT_TYPE = True
    engine = api_embedder("openai:all-MiniLM-L6-v2")

    engine.embed_queries(["a question"])
    engine.embed_documents(["a chunk"])

    assert server.requests[0].json["input_type"] == "query"
    assert "input_type" not in server.requests[1].json


def test_openai_without_a_key_sends_no_authorization(openai, settings):
    server = openai()
    settings.EMBEDDING_API_KEY = ""

    api_embedder("openai:local-model").embed_documents(["alpha"])

    assert "authorization" not in server.requests[0].headers


def test_unknown_dimensions_are_probed_once(openai):
    server = openai(default_dims=48)
    engine = api_embedder("openai:local-model")

    assert engine.dims == 48
    assert engine.dims == 48
    assert len(server.requests) == 1


def test_openai_results_are_ordered_by_index(openai):
    openai(Answer(shuffle=True))
    texts = ["one", "two", "three", "four"]

    vectors = api_embedder("openai:m").embed_documents(texts)

    np.testing.assert_allclose(vectors, expected(texts, 64), atol=1e-6)


def test_openai_splits_big_inputs_into_requests_of_256(openai):
    server = openai()
    texts = [f"t{i}" for i in range(600)]

    vectors = api_embedder("openai:m").embed_documents(texts)

    assert [len(r.json["input"]) for r in server.requests] == [256, 256, 88]
    np.testing.assert_allclose(vectors, expected(texts, 64), atol=1e-6)


# --- failures ------------------------------------------------------------------------------------


def retry_after_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# Named ids: a date in an id differs between two test processes that collect a second apart (xdist stops).
@pytest.mark.parametrize(
    "retry_after, min_wait",
    [("0", 0.0), ("1", 0.9), (retry_after_date(-60), 0.0)],
    ids=["zero-seconds", "one-second", "a-date-passed"],
)
def test_rate_limit_waits_for_retry_after_then_succeeds(gemini, retry_after, min_wait):
    server = gemini(error_reply(429, "Resource has been exhausted", {"Retry-After": retry_after}))

    started = time.monotonic()
    vectors = api_embedder("gemini:gemini-embedding-001@768").embed_queries(["q"])

    assert min_wait <= time.monotonic() - started < min_wait + 2
    assert len(server.requests) == 2
    np.testing.assert_allclose(vectors, expected(["q"], 768), atol=1e-6)


def test_persistent_rate_limit_gives_up_after_the_retries(openai):
    server = openai(*[error_reply(429, "Rate limit reached", {"Retry-After": "0"})] * 10)

    with pytest.raises(EmbeddingAPIError, match="HTTP 429: Rate limit reached") as failure:
        api_embedder("openai:m").embed_documents(["a"])

    assert failure.value.status == 429
    assert len(server.requests) == embedding_api.MAX_RETRIES + 1


def test_retry_after_is_capped(openai, monkeypatch):
    monkeypatch.setattr(embedding_api, "MAX_RETRY_WAIT", 0.05)
    server = openai(error_reply(429, "slow down", {"Retry-After": "3600"}))

    started = time.monotonic()
    api_embedder("openai:m").embed_documents(["a"])

    assert time.monotonic() - started < 1
    assert len(server.requests) == 2


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_server_errors_are_retried(gemini, openai, kind):
    start = gemini if kind == "gemini" else openai
    server = start(error_reply(500, "internal"), error_reply(503, "overloaded"))
    name = "gemini:gemini-embedding-001@768" if kind == "gemini" else "openai:m"

    vectors = api_embedder(name).embed_documents(["a", "b"])

    assert len(server.requests) == 3
    assert vectors.shape[0] == 2


def test_persistent_server_errors_give_up(openai):
    server = openai(*[error_reply(502, "bad gateway")] * 10)

    with pytest.raises(EmbeddingAPIError, match="HTTP 502: bad gateway") as failure:
        api_embedder("openai:m").embed_documents(["a"])

    assert failure.value.status == 502
    assert len(server.requests) == embedding_api.MAX_RETRIES + 1


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_client_errors_raise_at_once_with_the_api_message(gemini, openai, kind):
    start = gemini if kind == "gemini" else openai
    server = start(error_reply(400, "API key not valid. Please pass a valid API key."))
    name = "gemini:gemini-embedding-001" if kind == "gemini" else "openai:m"

    with pytest.raises(EmbeddingAPIError) as failure:
        api_embedder(name).embed_documents(["a"])

    assert str(failure.value) == f"{name}: HTTP 400: API key not valid. Please pass a valid API key."
    assert failure.value.status == 400
    assert len(server.requests) == 1


def test_an_error_body_that_is_not_json_is_quoted(openai):
    openai(Reply(401, b"<html>Unauthorized</html>"))

    with pytest.raises(EmbeddingAPIError, match=r"HTTP 401: <html>Unauthorized</html>"):
        api_embedder("openai:m").embed_documents(["a"])


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply(200, b"{not json"), "not JSON"),
        (Reply(200, {"result": []}), "no embeddings"),
        (Reply(200, {"embeddings": [{"values": ["x", "y"]}]}), "not lists of numbers"),
        (Answer(drop=1), "expected 2 vectors"),
    ],
)
def test_malformed_gemini_responses_are_errors(gemini, reply, message):
    server = gemini(reply)

    with pytest.raises(EmbeddingAPIError, match=message):
        api_embedder("gemini:gemini-embedding-001@768").embed_documents(["a", "b"])
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply(200, b""), "not JSON"),
        (Reply(200, {"data": [{"embedding": [1.0]}]}), "no data"),
        (Reply(200, {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}), "indexes"),
        (
            Reply(200, {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}),
            "equal length",
        ),
        (Answer(drop=1), "expected indexes 0..1, got 1 vectors"),
    ],
)
def test_malformed_openai_responses_are_errors(openai, reply, message):
    openai(reply)

    with pytest.raises(EmbeddingAPIError, match=message):
        api_embedder("openai:m").embed_documents(["a", "b"])


def test_vectors_of_the_wrong_size_are_errors(openai):
    openai(Reply(200, {"data": [{"index": 0, "embedding": [1.0, 2.0]}]}))

    with pytest.raises(EmbeddingAPIError, match="expected 64 dimensions, got 2"):
        api_embedder("openai:m@64").embed_documents(["a"])


def test_an_unreachable_server_is_retried_then_an_error(settings):
    with FakeEmbeddingServer("openai") as server:
        url = server.url
    settings.EMBEDDING_API_BASE_URL = f"{url}/v1"  # nothing listens there any more

    with pytest.raises(EmbeddingAPIError, match="ConnectError") as failure:
        api_embedder("openai:m").embed_documents(["a"])
    assert failure.value.status is None


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_private_addresses_are_refused_without_permission(gemini, openai, settings, kind):
    server = gemini() if kind == "gemini" else openai()
    settings.OUTBOUND_ALLOW_PRIVATE = False
    name = "gemini:gemini-embedding-001" if kind == "gemini" else "openai:m"

    with pytest.raises(EmbeddingAPIError, match="refused: address 127.0.0.1 is loopback") as failure:
        api_embedder(name).embed_queries(["q"])

    assert isinstance(failure.value.__cause__, OutboundRefused)
    assert server.requests == []
