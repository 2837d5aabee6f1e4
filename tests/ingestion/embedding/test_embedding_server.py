"""The embedding server (ingestion/embedding/server.py) with the real default model, served by
uvicorn on 127.0.0.1, and reached through the real OpenAI-compatible client."""

import base64
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from ingestion.embedding.api import OpenAIEmbedder
from ingestion.embedding.server import MAX_BODY_BYTES, MAX_INPUTS, EmbeddingServer
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[3]

TEXTS = [
    "How do I add my website to the assistant?",
    "Pricing plans and billing",
    "The crawler follows links on the same host and reads sitemaps.",
]


@contextmanager
def uvicorn_serving(app):
    """``app`` served by uvicorn in a thread on a random loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve(embedder):
    """Start an EmbeddingServer on the real default model; returns (base URL, app)."""
    with_servers = []

    def start(engine=embedder, **options):
        options.setdefault("token", "")
        app = EmbeddingServer(engine, **options)
        context = uvicorn_serving(app)
        with_servers.append(context)
        return context.__enter__(), app

    yield start
    for context in with_servers:
        context.__exit__(None, None, None)


@pytest.fixture
def client_settings(settings):
    """Settings of a web process that embeds through the server (loopback allowed for the test)."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.EMBEDDING_API_KEY = ""
    settings.EMBEDDING_API_INPUT_TYPE = True
    return settings


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def post(url: str, payload=None, *, content: bytes | None = None, token: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/v1/embeddings", json=payload, content=content, headers=headers, timeout=30)


def assert_openai_error(response: httpx.Response, status: int, code=None, param=None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert (error["code"], error["param"]) == (code, param)
    return error["message"]


def test_the_openai_client_through_the_server_gives_the_local_vectors(serve, client_settings, embedder):
    url, app = serve()
    client_settings.EMBEDDING_API_BASE_URL = f"{url}/v1"
    remote = OpenAIEmbedder(embedder.name)

    documents = remote.embed_documents(TEXTS)
    queries = remote.embed_queries(TEXTS[:1])

    assert remote.dims == embedder.dims
    assert documents.shape == (3, embedder.dims) and documents.dtype == np.float32
    assert cosines(documents, embedder.embed_documents(TEXTS)).min() >= 0.9999
    assert cosines(queries, embedder.embed_queries(TEXTS[:1])).min() >= 0.9999
    assert app.stats["requests"] == 2 and app.stats["inputs"] == 4


def test_the_response_has_the_openai_shape(serve, embedder):
    url, _ = serve()

    response = post(url, {"model": embedder.name, "input": TEXTS[0], "input_type": "query"})

    assert response.status_code == 200
    body = response.json()
    tokens = embedder.count_tokens(TEXTS[:1])[0]
    assert body["object"] == "list"
    assert body["model"] == embedder.name
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert [(item["object"], item["index"], len(item["embedding"])) for item in body["data"]] == [
        ("embedding", 0, embedder.dims)
    ]


def test_base64_encoding_is_little_endian_float32(serve, embedder):
    url, _ = serve()

    floats = post(url, {"input": TEXTS}).json()["data"]
    encoded = post(url, {"input": TEXTS, "encoding_format": "base64"}).json()["data"]

    decoded = [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in encoded]
    np.testing.assert_allclose(decoded, [item["embedding"] for item in floats], atol=1e-6)


def test_concurrent_requests_are_batched_and_split_back(serve, client_settings, embedder):
    url, app = serve(max_wait_ms=50)
    client_settings.EMBEDDING_API_BASE_URL = f"{url}/v1"
    remote = OpenAIEmbedder(embedder.name)
    texts = [f"question number {i} about {topic}" for i, topic in enumerate(["billing", "crawling", "widgets"] * 6)]
    results = [None] * len(texts)
    barrier = threading.Barrier(len(texts))

    def ask(i):
        barrier.wait()
        results[i] = remote.embed_queries([texts[i]])[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert app.stats["requests"] == len(texts)
    assert app.stats["batches"] < len(texts) / 2
    assert cosines(np.array(results), embedder.embed_queries(texts)).min() >= 0.9999
    stats = httpx.get(f"{url}/stats").json()
    assert stats == {
        "requests": len(texts),
        "inputs": len(texts),
        "tokens": sum(embedder.count_tokens(texts)),
        "batches": app.stats["batches"],
    }


def test_a_bearer_token_is_required_when_set(serve, client_settings, embedder):
    url, _ = serve(token="s3cret")

    message = assert_openai_error(post(url, {"input": "hello"}), 401, code="invalid_api_key")
    assert "bearer token" in message
    assert_openai_error(post(url, {"input": "hello"}, token="wrong"), 401, code="invalid_api_key")
    assert_openai_error(httpx.get(f"{url}/stats"), 401, code="invalid_api_key")
    assert post(url, {"input": "hello"}, token="s3cret").status_code == 200
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "model": embedder.name, "dims": embedder.dims}

    client_settings.EMBEDDING_API_BASE_URL = f"{url}/v1"
    client_settings.EMBEDDING_API_KEY = "s3cret"
    assert OpenAIEmbedder(embedder.name).embed_queries(["hello"]).shape == (1, embedder.dims)


@pytest.mark.parametrize(
    "payload, status, code, param",
    [
        ({"input": ""}, 400, None, "input"),
        ({"input": []}, 400, None, "input"),
        ({"encoding_format": "float"}, 400, None, "input"),
        ({"input": [101, 7592, 102]}, 400, None, "input"),
        ({"input": ["ok", ""]}, 400, None, "input"),
        ([1, 2], 400, None, None),
        ({"input": "a", "encoding_format": "int8"}, 400, None, "encoding_format"),
        ({"input": "a", "dimensions": 64}, 400, None, "dimensions"),
        ({"input": "a", "input_type": "passage"}, 400, None, "input_type"),
        ({"input": "a", "model": "text-embedding-3-small"}, 404, "model_not_found", "model"),
        ({"input": ["a"] * (MAX_INPUTS + 1)}, 413, None, "input"),
        ({"input": "word " * 300_001}, 413, None, "input"),
    ],
)
def test_bad_requests_get_openai_errors(serve, payload, status, code, param):
    url, app = serve()

    assert_openai_error(post(url, payload), status, code, param)
    assert app.stats["batches"] == 0


def test_transport_errors_get_openai_errors(serve):
    url, _ = serve()

    assert "not valid JSON" in assert_openai_error(post(url, content=b'{"input": '), 400)
    assert_openai_error(post(url, content=b"x" * (MAX_BODY_BYTES + 1)), 413)
    assert_openai_error(httpx.get(f"{url}/v1/models"), 404, code="not_found")
    assert_openai_error(httpx.get(f"{url}/v1/embeddings"), 405, code="method_not_allowed")


class BrokenEngine:
    """An engine whose model fails, as a GPU that ran out of memory would."""

    name, dims, max_length = "broken", 4, 16

    def count_tokens(self, texts):
        return [len(text.split()) for text in texts]

    def embed_documents(self, texts, batch_tokens=16384):
        raise RuntimeError("CUDA out of memory")


def test_an_engine_failure_is_a_server_error_and_the_server_carries_on(serve):
    url, _ = serve(engine=BrokenEngine())

    for _ in range(2):
        message = assert_openai_error(post(url, {"input": "hello"}), 500)
        assert message == "the embedding model failed: RuntimeError: CUDA out of memory"


@pytest.mark.slow  # over 3 s alone: make test runs it, make test-fast does not
def test_the_management_command_serves_the_configured_model(embedder):
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve_embeddings", "--port", str(port), "--max-wait-ms", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "serve_embeddings did not start"
            try:
                health = httpx.get(f"{url}/health").json()
                break
            except httpx.TransportError:
                time.sleep(0.2)
        response = post(url, {"input": TEXTS, "model": embedder.name})
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()

    assert health == {"status": "ok", "model": embedder.name, "dims": embedder.dims}
    vectors = np.array([item["embedding"] for item in response.json()["data"]])
    assert cosines(vectors, embedder.embed_documents(TEXTS)).min() >= 0.9999
    assert f"Serving {embedder.name} ({embedder.dims} dimensions) on {url}/v1/embeddings" in output
