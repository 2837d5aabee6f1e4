"""Embedding engines backed by HTTP APIs: Google Gemini and any OpenAI-compatible ``/embeddings``.

``ingestion.embedding.get_embedder`` hands names that start with ``gemini:`` or ``openai:`` to
:func:`api_embedder`, which returns one engine per name and process. The engines have the interface
of the local ones: ``name``, ``dims``, ``max_length``, ``count_tokens(texts)``,
``embed_documents(texts, batch_tokens)`` and ``embed_queries(texts, batch_tokens)``; the embed
methods return L2-normalised float32 arrays of shape ``(len(texts), dims)``.

Names:

* ``gemini:gemini-embedding-001`` or ``gemini:gemini-embedding-001@768`` (768, 1536 or 3072
  dimensions, 3072 by default): Google's ``POST {GEMINI_BASE_URL}/v1beta/models/{model}:
  batchEmbedContents`` with ``GEMINI_API_KEY``. Documents are sent as ``RETRIEVAL_DOCUMENT`` and
  queries as ``RETRIEVAL_QUERY``.
* ``openai:text-embedding-3-small`` or ``openai:BAAI/bge-base-en-v1.5@768``: ``POST
  {EMBEDDING_API_BASE_URL}/embeddings`` (OpenAI, TEI, vLLM, Infinity, or this project's own
  ``manage.py serve_embeddings``), with ``EMBEDDING_API_KEY`` as a bearer token when set. ``@D``
  asks for ``D`` dimensions (``"dimensions": D``, for models trained with Matryoshka learning);
  without it the dimensions are those of the first response (reading ``dims`` before any embedding
  makes one probe request).

A web process embeds its queries on a GPU machine that runs ``manage.py serve_embeddings`` with
``EMBEDDING_MODEL=openai:<the served model's name>``,
``EMBEDDING_API_BASE_URL=http://gpu-host:8081/v1``, ``EMBEDDING_API_KEY`` equal to the server's
``EMBEDDING_SERVER_TOKEN``, and ``EMBEDDING_API_INPUT_TYPE=true`` so that queries are marked
``"input_type": "query"`` (an extension that the project's server understands; it is not sent
otherwise).

Settings are read at request time. Every request goes through the SSRF-safe client of
:mod:`chatsite.lib.http`; a base URL that it refuses raises :class:`EmbeddingAPIError` whose
``__cause__`` is the :class:`~chatsite.lib.http.OutboundRefused` (private addresses need
``OUTBOUND_ALLOW_PRIVATE`` or an ``OUTBOUND_ALLOWED_HOSTS`` entry). A response larger than
``OUTBOUND_STREAM_MAX_BYTES`` once decoded, or in stacked encodings, raises it at once too.

Failures: 429, 5xx, timeouts and connection errors are retried up to ``MAX_RETRIES`` times, after
the response's ``Retry-After`` (seconds or an HTTP date) when it has one, else after an exponential
backoff from ``RETRY_BACKOFF``; no wait is longer than ``MAX_RETRY_WAIT``. Any other status, and a response that is not the expected JSON or does
not hold one vector of the right size per text, raise :class:`EmbeddingAPIError` at once.

Token counts are estimates (``len(text) // 4 + 1``, about four characters per token for English
text): the APIs do not expose their tokenizers. They size request batches and chunks only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator

import httpx
import numpy as np
from django.conf import settings

from chatsite.lib import http as outbound

logger = logging.getLogger(__name__)

#: Retries after the first attempt, for 429, 5xx, timeouts and connection errors.
MAX_RETRIES = 3
#: Longest wait before a retry, in seconds, whatever ``Retry-After`` asks for.
MAX_RETRY_WAIT = 10.0
#: Wait before the first retry without ``Retry-After``; doubled on each further retry.
RETRY_BACKOFF = 0.5
#: Seconds allowed for one request (connect, send, wait for the vectors, read): the outbound
#: client's wall-clock deadline, so a server that drips its answer is cut off here too.
REQUEST_TIMEOUT = 60.0
#: How much of an error body goes into an error message, in characters.
ERROR_BODY_CHARS = 500

GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
#: Input token limit of gemini-embedding-001.
GEMINI_MAX_LENGTH = 2048
#: Requests per batchEmbedContents call accepted by the API.
GEMINI_MAX_INPUTS = 100
GEMINI_DIMS = (768, 1536, 3072)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Input token limit of OpenAI's text-embedding-3 models (servers of smaller models truncate).
OPENAI_MAX_LENGTH = 8192
#: Texts per request (OpenAI accepts 2048; smaller requests keep each call short).
OPENAI_MAX_INPUTS = 256


class EmbeddingAPIError(Exception):
    """An embedding API refused the request, failed repeatedly, or answered nonsense.

    ``status`` is the last HTTP status received, or None when there was no usable response.
    """

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def estimate_tokens(text: str) -> int:
    """A rough token count for text sent to an API whose tokenizer is not available here."""
    return len(text) // 4 + 1


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


class APIEmbedder:
    """What the Gemini and OpenAI-compatible engines share: batching, retries, checks.

    A subclass sets ``name``, ``max_length``, ``max_inputs`` and ``_dims`` and implements
    :meth:`_request` (one HTTP request's URL, headers and body) and :meth:`_parse` (its vectors).
    """

    name: str
    max_length: int
    max_inputs: int
    _dims: int | None

    @property
    def dims(self) -> int:
        """Output dimensions; when not configured, learnt from one probe request."""
        if self._dims is None:
            self.embed_documents(["dimension probe"])
        return self._dims

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Estimated tokens per text (see :func:`estimate_tokens`)."""
        return [estimate_tokens(text) for text in texts]

    batch_tokens = 16384  # estimated tokens per request when the caller gives no budget

    def embed_documents(self, texts: list[str], batch_tokens: int | None = None) -> np.ndarray:
        return self._embed(texts, "document", batch_tokens or self.batch_tokens)

    def embed_queries(self, texts: list[str], batch_tokens: int | None = None) -> np.ndarray:
        return self._embed(texts, "query", batch_tokens or self.batch_tokens)

    def _request(self, texts: list[str], kind: str) -> tuple[str, dict[str, str], dict]:
        raise NotImplementedError

    def _parse(self, payload, count: int) -> list:
        raise NotImplementedError

    def _embed(self, texts: list[str], kind: str, batch_tokens: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        parts = []
        with outbound.sync_client(timeout=REQUEST_TIMEOUT, deadline=REQUEST_TIMEOUT) as client:
            for start, end in self._batches(texts, batch_tokens):
                url, headers, body = self._request(texts[start:end], kind)
                payload = self._post(client, url, headers, body)
                parts.append(self._vectors(self._parse(payload, end - start), end - start))
        return l2_normalize(np.concatenate(parts))

    def _batches(self, texts: list[str], batch_tokens: int) -> Iterator[tuple[int, int]]:
        """Consecutive ``(start, end)`` ranges of at most ``max_inputs`` texts and about
        ``batch_tokens`` estimated tokens (a longer text goes alone)."""
        start, tokens = 0, 0
        for index, count in enumerate(self.count_tokens(texts)):
            count = min(count, self.max_length)
            if index > start and (index - start >= self.max_inputs or tokens + count > batch_tokens):
                yield start, index
                start, tokens = index, 0
            tokens += count
        yield start, len(texts)

    def _vectors(self, rows: list, count: int) -> np.ndarray:
        """The response's vectors as a float32 array, checked against the expected shape."""
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbeddingAPIError(
                f"{self.name}: the vectors in the response are not lists of numbers of equal length"
            ) from None
        if vectors.ndim != 2 or vectors.shape[0] != count or vectors.shape[1] == 0:
            raise EmbeddingAPIError(f"{self.name}: expected {count} vectors, got an array of shape {vectors.shape}")
        if self._dims is None:
            self._dims = int(vectors.shape[1])
        elif vectors.shape[1] != self._dims:
            raise EmbeddingAPIError(f"{self.name}: expected {self._dims} dimensions, got {vectors.shape[1]}")
        if not np.isfinite(vectors).all():
            raise EmbeddingAPIError(f"{self.name}: the response holds vectors that are not finite")
        return vectors

    def _post(self, client: httpx.Client, url: str, headers: dict[str, str], body: dict):
        """The decoded JSON answer to one request, retried as the module docstring says."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = client.post(url, headers=headers, json=body)
            except outbound.OutboundRefused as exc:
                raise EmbeddingAPIError(f"{self.name}: request refused: {exc.reason}") from exc
            except (outbound.ResponseTooLarge, outbound.ResponseRefused) as exc:
                raise EmbeddingAPIError(f"{self.name}: response refused: {exc}") from exc
            except httpx.TransportError as exc:
                failure, status, wait = f"{type(exc).__name__}: {exc}", None, None
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise EmbeddingAPIError(
                            f"{self.name}: the response is not JSON: {response.text[:ERROR_BODY_CHARS]!r}", status=200
                        ) from None
                failure = f"HTTP {status}: {_error_message(response)}"
                if status != 429 and status < 500:
                    raise EmbeddingAPIError(f"{self.name}: {failure}", status=status)
                wait = outbound.retry_after_seconds(response.headers.get("retry-after"))
            if attempt == MAX_RETRIES:
                break
            wait = min(RETRY_BACKOFF * 2**attempt if wait is None else wait, MAX_RETRY_WAIT)
            logger.warning("%s: %s; retry %d of %d in %.1f s", self.name, failure, attempt + 1, MAX_RETRIES, wait)
            time.sleep(wait)
        raise EmbeddingAPIError(f"{self.name}: {failure} (after {MAX_RETRIES + 1} attempts)", status=status)


class GeminiEmbedder(APIEmbedder):
    """Google's Gemini embedding models through ``batchEmbedContents``."""

    max_length = GEMINI_MAX_LENGTH
    max_inputs = GEMINI_MAX_INPUTS

    def __init__(self, model: str = "gemini-embedding-001", dims: int | None = None):
        if dims is not None and dims not in GEMINI_DIMS:
            raise ValueError(f"Gemini embeddings have {', '.join(map(str, GEMINI_DIMS))} dimensions, not {dims}")
        self.model = model
        self.name = f"gemini:{model}" + (f"@{dims}" if dims else "")
        self._dims = dims or GEMINI_DIMS[-1]

    def _request(self, texts: list[str], kind: str) -> tuple[str, dict[str, str], dict]:
        key = settings.GEMINI_API_KEY
        if not key:
            raise EmbeddingAPIError(f"{self.name}: GEMINI_API_KEY is not set")
        base = (settings.GEMINI_BASE_URL or GEMINI_DEFAULT_BASE_URL).rstrip("/")
        task = "RETRIEVAL_QUERY" if kind == "query" else "RETRIEVAL_DOCUMENT"
        body = {
            "requests": [
                {
                    "model": f"models/{self.model}",
                    "content": {"parts": [{"text": text}]},
                    "taskType": task,
                    "outputDimensionality": self._dims,
                }
                for text in texts
            ]
        }
        return f"{base}/v1beta/models/{self.model}:batchEmbedContents", {"x-goog-api-key": key}, body

    def _parse(self, payload, count: int) -> list:
        try:
            return [item["values"] for item in payload["embeddings"]]
        except (KeyError, TypeError):
            raise EmbeddingAPIError(f"{self.name}: no embeddings[].values in the response") from None


class OpenAIEmbedder(APIEmbedder):
    """Any OpenAI-compatible embeddings endpoint; vectors are always L2-normalised here."""

    max_length = OPENAI_MAX_LENGTH
    max_inputs = OPENAI_MAX_INPUTS

    def __init__(self, model: str, dims: int | None = None):
        self.model = model
        self.name = f"openai:{model}" + (f"@{dims}" if dims else "")
        self.requested_dims = dims
        self._dims = dims

    def _request(self, texts: list[str], kind: str) -> tuple[str, dict[str, str], dict]:
        base = (settings.EMBEDDING_API_BASE_URL or OPENAI_DEFAULT_BASE_URL).rstrip("/")
        key = settings.EMBEDDING_API_KEY
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.requested_dims:
            body["dimensions"] = self.requested_dims
        if kind == "query" and settings.EMBEDDING_API_INPUT_TYPE:
            body["input_type"] = "query"
        return f"{base}/embeddings", headers, body

    def _parse(self, payload, count: int) -> list:
        """The vectors in input order: the API says which input each one belongs to by ``index``."""
        try:
            items = payload["data"]
            indexes = [item["index"] for item in items]
            vectors = [item["embedding"] for item in items]
        except (KeyError, TypeError):
            raise EmbeddingAPIError(f"{self.name}: no data[].index/embedding in the response") from None
        if sorted(indexes) != list(range(count)):
            raise EmbeddingAPIError(f"{self.name}: expected indexes 0..{count - 1}, got {len(indexes)} vectors")
        ordered = [None] * count
        for index, vector in zip(indexes, vectors):
            ordered[index] = vector
        return ordered


@functools.lru_cache(maxsize=16)
def api_embedder(name: str) -> APIEmbedder:
    """The process-wide engine for an API model name (``gemini:MODEL[@D]``, ``openai:MODEL[@D]``)."""
    provider, _, rest = name.partition(":")
    model, _, size = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not model:
        raise ValueError(f"no model in embedding model name {name!r}")
    if size and not (size.isdigit() and int(size) > 0):
        raise ValueError(f"the dimensions after '@' in {name!r} must be a positive integer")
    dims = int(size) if size else None
    if provider == "gemini":
        return GeminiEmbedder(model, dims)
    if provider == "openai":
        return OpenAIEmbedder(model, dims)
    raise ValueError(f"unknown embedding API {provider!r} in {name!r} (expected 'gemini:' or 'openai:')")


def _error_message(response: httpx.Response) -> str:
    """The API's own error message (``{"error": {"message": ...}}`` and its variants), else the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:ERROR_BODY_CHARS]
        if isinstance(error, str) and error:  # TEI
            return error[:ERROR_BODY_CHARS]
        if payload.get("message"):  # vLLM
            return str(payload["message"])[:ERROR_BODY_CHARS]
    return response.text[:ERROR_BODY_CHARS] or response.reason_phrase
