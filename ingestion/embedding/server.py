"""An OpenAI-compatible embeddings server for the GPU machine, batching concurrent requests.

``python manage.py serve_embeddings`` serves one local engine (``ingestion.embedding``) with
uvicorn. Web processes elsewhere embed their visitors' queries through it with
:class:`ingestion.embedding.api.OpenAIEmbedder` (see that module for their settings).

Endpoints:

* ``POST /v1/embeddings`` - the OpenAI request and response shapes: ``{"model": ..., "input": "text"
  or ["text", ...], "encoding_format": "float" | "base64", "dimensions": D}``, plus the extension
  ``"input_type": "query" | "document"`` (default ``document``) that picks ``embed_queries`` or
  ``embed_documents``. ``model``, when given, must be the served engine's name (else 404
  ``model_not_found``, as vectors of another model would be silently wrong); ``dimensions``, when
  given, must equal the engine's. Texts longer than the model's limit are truncated by the engine.
  ``usage.prompt_tokens`` is the engine's ``count_tokens`` total.
* ``GET /health`` - ``{"status": "ok", "model": NAME, "dims": D}``, without authentication.
* ``GET /stats`` - counters: ``requests``, ``inputs``, ``tokens`` and ``batches`` (engine calls).

When ``EMBEDDING_SERVER_TOKEN`` is set, ``/v1/embeddings`` and ``/stats`` require
``Authorization: Bearer TOKEN``. Errors use OpenAI's shape, ``{"error": {"message", "type",
"param", "code"}}``: 400 malformed request, 401 bad token, 404 unknown path or model, 405 wrong
method, 413 body, input count or token total over the limits below, 500 engine failure.

Micro-batching: each request's texts join one queue. A single batching task takes the oldest
request, then every request that arrives within ``max_wait_ms`` of it, up to ``max_batch_tokens``
tokens (a request that would overflow the batch waits for the next one), and runs the batch as one
engine call per input type in a worker thread, so the event loop keeps accepting requests while the
model runs. Requests that queue up during a call are batched as soon as it ends. The results are
split back per request. The engine splits a batch further when its padded size exceeds
``max_batch_tokens``.

Every engine call, token counting included, runs in that one worker thread: a Hugging Face fast
tokenizer keeps its truncation and padding settings as shared state that each call may change, so
counting tokens must not overlap a forward pass.

The batching task starts with the first request (the app needs no ASGI lifespan events).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hmac
import json
import logging
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Most texts in one request (OpenAI's limit).
MAX_INPUTS = 2048
#: Most tokens in one request, all texts together (OpenAI's limit).
MAX_REQUEST_TOKENS = 300_000


class APIError(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.payload = {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "param": param,
                "code": code,
            }
        }


@dataclass
class _Pending:
    """One request waiting for its vectors."""

    texts: list[str]
    kind: str  # "query" or "document"
    cost: int  # tokens it adds to a batch
    arrived: float  # event-loop time
    future: asyncio.Future = field(repr=False)


class EmbeddingServer:
    """The ASGI application; ``stats`` holds the counters that ``/stats`` reports."""

    def __init__(self, engine, *, max_batch_tokens: int = 16384, max_wait_ms: float = 5.0, token: str | None = None):
        self.engine = engine
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.token = settings.EMBEDDING_SERVER_TOKEN if token is None else token
        self.stats = {"requests": 0, "inputs": 0, "tokens": 0, "batches": 0}
        self._queue: asyncio.Queue[_Pending] | None = None
        self._batcher: asyncio.Task | None = None
        self._engine_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        try:
            status, payload = await self._route(scope, receive)
        except APIError as exc:
            status, payload = exc.status, exc.payload
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope, receive) -> tuple[int, dict]:
        routes = {
            "/health": ("GET", self._health),
            "/stats": ("GET", self._stats),
            "/v1/embeddings": ("POST", self._embeddings),
        }
        if scope["path"] not in routes:
            raise APIError(404, f"unknown path {scope['path']}", code="not_found")
        method, handler = routes[scope["path"]]
        if scope["method"] != method:
            raise APIError(405, f"use {method} for {scope['path']}", code="method_not_allowed")
        return await handler(scope, receive)

    async def _health(self, scope, receive) -> tuple[int, dict]:
        return 200, {"status": "ok", "model": self.engine.name, "dims": self.engine.dims}

    async def _stats(self, scope, receive) -> tuple[int, dict]:
        self._authorize(scope)
        return 200, dict(self.stats)

    async def _embeddings(self, scope, receive) -> tuple[int, dict]:
        self._authorize(scope)
        request = _parse_json(await _read_body(scope, receive))
        texts, kind, encoding = self._validate(request)
        counts = await self._in_engine_thread(self.engine.count_tokens, texts)
        if sum(counts) > MAX_REQUEST_TOKENS:
            raise APIError(413, f"{sum(counts)} tokens in one request; at most {MAX_REQUEST_TOKENS}", param="input")
        cost = sum(min(count, self.engine.max_length) + 2 for count in counts)  # with [CLS] and [SEP]
        try:
            vectors = await self._submit(texts, kind, cost)
        except Exception as exc:
            raise APIError(500, f"the embedding model failed: {type(exc).__name__}: {exc}") from exc
        self.stats["requests"] += 1
        self.stats["inputs"] += len(texts)
        self.stats["tokens"] += sum(counts)
        encode = _base64 if encoding == "base64" else np.ndarray.tolist
        return 200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "model": self.engine.name,
            "usage": {"prompt_tokens": sum(counts), "total_tokens": sum(counts)},
        }

    def _authorize(self, scope) -> None:
        if not self.token:
            return
        sent = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(sent, f"Bearer {self.token}".encode()):
            raise APIError(401, "missing or invalid bearer token", code="invalid_api_key")

    def _validate(self, request) -> tuple[list[str], str, str]:
        """The texts, input type and encoding format of a request, or the 4xx that it deserves."""
        if not isinstance(request, dict):
            raise APIError(400, "the body must be a JSON object")
        model = request.get("model")
        if model is not None and model != self.engine.name:
            raise APIError(404, f"this server serves {self.engine.name!r}, not {model!r}", "model_not_found", "model")
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise APIError(400, "'input' must be a string or a list of strings", param="input")
        if not texts or not all(texts):
            raise APIError(400, "'input' must not be empty or hold empty strings", param="input")
        if len(texts) > MAX_INPUTS:
            raise APIError(413, f"{len(texts)} inputs in one request; at most {MAX_INPUTS}", param="input")
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise APIError(400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format")
        dimensions = request.get("dimensions")
        if dimensions is not None and dimensions != self.engine.dims:
            raise APIError(400, f"this model has {self.engine.dims} dimensions only", param="dimensions")
        kind = request.get("input_type") or "document"
        if kind not in ("query", "document"):
            raise APIError(400, "'input_type' must be 'query' or 'document'", param="input_type")
        return texts, kind, encoding

    async def _in_engine_thread(self, function, *args):
        """``function(*args)`` run in the engine's worker thread, awaited without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._engine_thread, function, *args)

    async def _submit(self, texts: list[str], kind: str, cost: int) -> np.ndarray:
        """Queue texts for the next batch and wait for their vectors."""
        loop = asyncio.get_running_loop()
        if self._batcher is None:
            self._queue = asyncio.Queue()
            self._batcher = loop.create_task(self._batch_loop())
        pending = _Pending(texts, kind, cost, loop.time(), loop.create_future())
        self._queue.put_nowait(pending)
        return await pending.future

    async def _batch_loop(self) -> None:
        """Forever: gather one batch as the module docstring says, then run it."""
        loop = asyncio.get_running_loop()
        held = None  # a request that did not fit in the previous batch
        while True:
            first = held or await self._queue.get()
            held = None
            batch, tokens = [first], first.cost
            while tokens < self.max_batch_tokens:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = first.arrived + self.max_wait - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if tokens + item.cost > self.max_batch_tokens:
                    held = item
                    break
                batch.append(item)
                tokens += item.cost
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        """One engine call per input type in the batch; each request gets its rows, or the error."""
        for kind in ("query", "document"):
            items = [item for item in batch if item.kind == kind]
            if not items:
                continue
            embed = self.engine.embed_queries if kind == "query" else self.engine.embed_documents
            self.stats["batches"] += 1
            try:
                texts = [text for item in items for text in item.texts]
                vectors = await self._in_engine_thread(embed, texts, self.max_batch_tokens)
            except Exception as exc:
                logger.exception("embedding a batch of %d requests failed", len(items))
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in items:
                if not item.future.done():  # a cancelled request is skipped
                    item.future.set_result(vectors[start : start + len(item.texts)])
                start += len(item.texts)


async def _read_body(scope, receive) -> bytes:
    """The request body; 413 past ``MAX_BODY_BYTES``. A client that left ends the body early."""
    declared = dict(scope["headers"]).get(b"content-length", b"0")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise APIError(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise APIError(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            return bytes(body)


def _parse_json(body: bytes):
    try:
        return json.loads(body)
    except ValueError as exc:
        raise APIError(400, f"the body is not valid JSON: {exc}") from None


def _base64(vector: np.ndarray) -> str:
    """OpenAI's base64 encoding: the vector's little-endian float32 bytes."""
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
