"""Local HTTP servers that speak the Gemini and OpenAI embedding wire formats, for the API tests.

A :class:`FakeEmbeddingServer` listens on 127.0.0.1 (a random port) in a background thread, records
every request (path, headers, JSON body) and answers with the next scripted reply; once the script is
used up (or for a :class:`Answer` entry) it answers correctly:

* ``gemini``: ``POST /v1beta/models/{model}:batchEmbedContents`` -> ``{"embeddings": [{"values":
  [...]}]}``, one per request, of ``outputDimensionality`` values (3072 by default); like Google's,
  it refuses more than 100 requests, or a request whose ``model`` is not the one in the path.
* ``openai``: ``POST /v1/embeddings`` -> ``{"object": "list", "data": [{"object": "embedding",
  "index": i, "embedding": [...]}], "model": ..., "usage": {...}}`` of ``dimensions`` values
  (``default_dims`` when absent).

Vectors are :func:`fake_vector` of the text: deterministic and deliberately not unit length, so
tests can check both the order of the results and their normalisation.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from tests.servers import POLL_INTERVAL

GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchEmbedContents$")


def fake_vector(text: str, dims: int) -> np.ndarray:
    """The vector the fake servers give ``text``: seeded by its hash, with a norm far from 1."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).standard_normal(dims) * 3


@dataclass
class Reply:
    """A fixed response, whatever the request."""

    status: int
    body: bytes | dict = b""
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An API error in the ``{"error": {"message": ...}}`` shape that both APIs use."""
    return Reply(status, {"error": {"code": status, "message": message}}, headers or {})


@dataclass
class Answer:
    """A correct answer, optionally spoiled: ``drop`` vectors fewer, or (OpenAI) ``shuffle``d."""

    drop: int = 0
    shuffle: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    json: Any


class FakeEmbeddingServer:
    """A scripted embedding API; use as a context manager."""

    def __init__(self, kind: str, script: list[Reply | Answer] | None = None, default_dims: int = 64):
        assert kind in ("gemini", "openai")
        self.kind = kind
        self.script = list(script or [])
        self.default_dims = default_dims
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(POLL_INTERVAL,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeEmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def respond(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else Answer()
        if isinstance(step, Reply):
            return step
        if self.kind == "gemini":
            return self._gemini(request, step)
        return self._openai(request, step)

    def _gemini(self, request: RecordedRequest, step: Answer) -> Reply:
        match = GEMINI_PATH.match(request.path)
        if request.method != "POST" or not match:
            return error_reply(404, f"no such method: {request.method} {request.path}")
        requests = request.json["requests"]
        if len(requests) > 100:
            return error_reply(400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch")
        if any(item["model"] != f"models/{match['model']}" for item in requests):
            return error_reply(400, "Model in request does not match the model in the path")
        embeddings = [
            {
                "values": fake_vector(
                    item["content"]["parts"][0]["text"], item.get("outputDimensionality", 3072)
                ).tolist()
            }
            for item in requests
        ]
        return Reply(200, {"embeddings": embeddings[: len(embeddings) - step.drop]})

    def _openai(self, request: RecordedRequest, step: Answer) -> Reply:
        if request.method != "POST" or request.path != "/v1/embeddings":
            return error_reply(404, f"no such method: {request.method} {request.path}")
        body = request.json
        dims = body.get("dimensions", self.default_dims)
        data = [
            {"object": "embedding", "index": index, "embedding": fake_vector(text, dims).tolist()}
            for index, text in enumerate(body["input"])
        ]
        data = data[: len(data) - step.drop]
        if step.shuffle:
            data.reverse()
        tokens = sum(len(text.split()) for text in body["input"])
        return Reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _make_handler(server: FakeEmbeddingServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = server.respond(RecordedRequest(self.command, self.path, headers, payload))
            body = json.dumps(reply.body).encode() if isinstance(reply.body, dict) else reply.body
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args):
            pass

    return Handler
