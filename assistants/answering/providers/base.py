"""What every wire format shares: configuration, retries and timeouts, the SSE parser, errors and usage.

Three wire formats are spoken, each over Server-Sent Events:

* ``openai``    - any OpenAI-compatible ``POST {base_url}/chat/completions`` (OpenAI, DeepSeek, Grok,
  DashScope compatible mode, GLM, Groq, Together, vLLM, Ollama, ...);
* ``anthropic`` - the Anthropic Messages API, ``POST {base_url}/v1/messages``;
* ``gemini``    - Google's ``POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse``.

Every provider exposes one method, ``stream(messages)``, an async generator that yields the answer's
text deltas in order and, last, one :class:`Usage` when the API reported token counts. Failures are
raised as :class:`ProviderError`, whose ``user_message`` can be shown to the visitor as is.

Behaviour shared by all formats:

* All requests go through the SSRF-safe client of :mod:`chatsite.lib.http`.
* The response is parsed incrementally as it arrives; nothing is buffered beyond the current line.
* Rate limits (429), server errors (5xx), dropped connections and in-stream "overloaded" errors are
  retried up to ``max_retries`` times, but only while no text has been yielded: once the visitor has
  seen part of an answer, a failure is raised with ``partial=True`` instead.
* ``stall_timeout``: no bytes for that long raises ``ProviderError("timeout")``. ``timeout`` bounds
  the whole call, retries and waits included: each attempt is sent with what is left of it as the
  outbound client's deadline, which bounds the headers and any error body too (a server that drips
  them a byte at a time is cut off at the deadline).
* A response body larger than ``OUTBOUND_STREAM_MAX_BYTES`` once decoded, or in more than one
  ``Content-Encoding`` layer (a compression bomb), is a ``bad_response`` (not retried).
* A line whose data is not valid JSON is skipped with a warning (a proxy that mangles one chunk
  should not cost the visitor the whole answer); a stream that then ends with no text at all is a
  ``bad_response``.
* A stream that stops before its terminator (``[DONE]``, ``message_stop``, a ``finishReason``) after
  some text raises ``ProviderError("unavailable", partial=True)``: the answer was cut off.
* Closing the generator (``aclose()``, a visitor who went away) closes the upstream response and
  client at once.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.conf import settings

from chatsite.lib import http as outbound

logger = logging.getLogger(__name__)

#: Longest wait honoured from a ``Retry-After`` header before a retry, in seconds.
MAX_RETRY_WAIT = 4.0
#: Wait before the first retry when the server gave no ``Retry-After``; doubled on each further retry.
RETRY_BACKOFF = 0.5
#: Longest time allowed to open a connection, in seconds (still bounded by the overall timeout).
CONNECT_TIMEOUT = 10.0
#: Longest SSE line accepted; a longer one means the response is not the stream we asked for.
MAX_LINE_CHARS = 1_000_000
#: How much of an error response body is kept for the logs.
ERROR_BODY_BYTES = 2048

USER_MESSAGES = {
    "rate_limited": "The assistant is busy right now. Please try again in a moment.",
    "unavailable": "The assistant is temporarily unavailable. Please try again in a few minutes.",
    "timeout": "The assistant took too long to answer. Please try again.",
    "bad_response": "The assistant could not answer this time. Please try again later.",
    "auth": "The assistant is not available right now.",
    "refused": "The assistant is not available right now.",
}
CUT_OFF_MESSAGE = "The answer was cut off. Please try again."

_RETRYABLE_KINDS = {"rate_limited", "unavailable"}


@dataclass
class ProviderConfig:
    """How to reach one language-model API."""

    kind: str  # "openai" (any OpenAI-compatible chat-completions API), "anthropic", "gemini"
    # https://api.openai.com/v1 ; https://api.anthropic.com ; https://generativelanguage.googleapis.com
    base_url: str
    api_key: str
    model: str
    timeout: float = 60.0  # the whole call, retries included
    stall_timeout: float = 20.0  # no bytes for this long -> ProviderError("timeout")
    max_retries: int = 2  # retries only before the first text token
    temperature: float = 0.2
    max_tokens: int = 800


@dataclass
class Usage:
    """Token counts as reported by the API (None where it did not say)."""

    input_tokens: int | None
    output_tokens: int | None

    def record(self, model: str) -> dict:
        """``Message.usage``: the token counts and, when ``settings.LLM_PRICES`` (USD per million
        tokens) lists ``model`` and both counts are known, ``cost_usd``."""
        record = {"model": model, "prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens}
        price = settings.LLM_PRICES.get(model.removeprefix("models/"))
        if price and self.input_tokens is not None and self.output_tokens is not None:
            cost = self.input_tokens * price["input"] + self.output_tokens * price["output"]
            record["cost_usd"] = round(cost / 1_000_000, 8)
        return record


class ProviderError(Exception):
    """A failed answer.

    ``kind`` is one of "rate_limited", "unavailable", "timeout", "bad_response", "auth", "refused".
    ``str(error)`` carries the technical detail for the logs; ``user_message`` is safe for visitors.
    ``partial`` is True when some text had already been yielded before the failure.
    """

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        retry_after: float | None = None,
        partial: bool = False,
        user_message: str | None = None,
    ):
        super().__init__(detail or kind)
        self.kind = kind
        self.retry_after = retry_after
        self.partial = partial
        self._user_message = user_message

    @property
    def user_message(self) -> str:
        if self._user_message is not None:
            return self._user_message
        if self.partial:
            return CUT_OFF_MESSAGE
        return USER_MESSAGES.get(self.kind, USER_MESSAGES["unavailable"])


class ChatProvider(Protocol):
    name: str

    def stream(self, messages: list[dict]) -> AsyncIterator[str | Usage]:
        """messages: [{"role": "system"|"user"|"assistant", "content": str}]. Yields text deltas
        (str) in order, and finally one Usage object if the API reported usage.

        Implemented as an async generator (``async def`` with ``yield``). A caller that stops early
        should close it (``await stream.aclose()`` or ``contextlib.aclosing``) so that the upstream
        connection is released at once rather than when the generator is garbage-collected."""


# --- Server-Sent Events -------------------------------------------------------------------------


@dataclass
class SSEEvent:
    event: str
    data: str


class SSEParser:
    """Incremental parser for a ``text/event-stream`` body (WHATWG HTML, "Server-sent events").

    Feed it the raw bytes as they arrive; it returns the events completed so far. Lines may end in
    CRLF, LF or CR, also when split across chunks; comment lines (": keep-alive") are ignored;
    several ``data:`` lines of one event are joined with newlines. An event still open when the
    stream ends is dropped, as the standard says.
    """

    _LINE_END = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._buffer = ""
        self._event_type = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += self._decoder.decode(chunk)
        if "\r" not in self._buffer:  # lines ending in LF alone, as every provider sends them: no regex
            *lines, self._buffer = self._buffer.split("\n")
            events = [event for event in map(self._line, lines) if event is not None]
            if len(self._buffer) > MAX_LINE_CHARS:
                raise ProviderError("bad_response", f"SSE line longer than {MAX_LINE_CHARS} characters")
            return events
        events = []
        start = 0
        for match in self._LINE_END.finditer(self._buffer):
            if match.group() == "\r" and match.end() == len(self._buffer):
                break  # maybe the first half of a CRLF split across chunks: wait for the next one
            event = self._line(self._buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = self._buffer[start:]
        if len(self._buffer) > MAX_LINE_CHARS:
            raise ProviderError("bad_response", f"SSE line longer than {MAX_LINE_CHARS} characters")
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        event = SSEEvent(self._event_type or "message", "\n".join(self._data)) if self._data else None
        self._event_type = ""
        self._data = []
        return event


# --- The streaming loop shared by all formats ---------------------------------------------------


@dataclass
class _StreamState:
    """What one attempt has seen so far; the format parsers update it."""

    text_seen: bool = False
    finished: bool = False  # the API said the answer is complete
    stop_reading: bool = False  # nothing more is expected on this stream
    malformed: bool = False  # some data line was not valid JSON
    input_tokens: int | None = None
    output_tokens: int | None = None

    def usage(self) -> Usage | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return Usage(self.input_tokens, self.output_tokens)


@dataclass
class _Request:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)


class _StreamingProvider:
    """Sends one request per attempt and turns the SSE reply into text deltas.

    Subclasses describe their wire format with ``_build_request`` and ``_handle_event``.
    """

    name = ""

    def __init__(self, config: ProviderConfig):
        self.config = config

    def _build_request(self, messages: list[dict]) -> _Request:
        raise NotImplementedError

    def _handle_event(self, event: SSEEvent, state: _StreamState) -> Iterable[str]:
        """Return the text deltas carried by ``event`` and update ``state``; raise ProviderError
        for an error reported inside the stream."""
        raise NotImplementedError

    def _payload(self, event: SSEEvent, state: _StreamState) -> dict | None:
        """The event's JSON object, or None (with a warning) when its data is not one."""
        try:
            payload = json.loads(event.data)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            state.malformed = True
            logger.warning("%s: skipping a stream line that is not a JSON object: %.200r", self.name, event.data)
            return None
        return payload

    async def stream(self, messages: list[dict]) -> AsyncIterator[str | Usage]:
        config = self.config
        request = self._build_request(messages)
        deadline = time.monotonic() + config.timeout
        attempt = 0
        while True:
            state = _StreamState()
            failure: ProviderError | None = None
            try:
                remaining = max(deadline - time.monotonic(), 0.001)
                timeout = httpx.Timeout(
                    remaining,
                    connect=min(CONNECT_TIMEOUT, remaining),
                    read=min(config.stall_timeout, remaining),
                )
                async with shared_client().stream(
                    "POST",
                    request.url,
                    params=request.params,
                    headers=request.headers,
                    json=request.body,
                    timeout=timeout,
                    extensions={outbound.DEADLINE_AT: time.monotonic() + remaining},
                ) as response:
                    await _check_response(response)
                    parser = SSEParser()
                    chunks = response.aiter_bytes()
                    while not state.stop_reading:
                        # No timer of its own per piece: the client's read timeout (the stall timeout) and
                        # the request's deadline bound every socket read already.
                        chunk = await anext(chunks, None)
                        if chunk is None:
                            break
                        for event in parser.feed(chunk):
                            for text in self._handle_event(event, state):
                                if text:
                                    state.text_seen = True
                                    yield text
                            if state.stop_reading:
                                break
                    if state.stop_reading:
                        await _drain(chunks)  # the end of the body, so the connection can serve the next answer
            except ProviderError as error:
                failure = error
            except outbound.OutboundRefused as error:
                failure = ProviderError("refused", f"outbound request refused: {error.reason}")
            except (outbound.ResponseTooLarge, outbound.ResponseRefused) as error:
                failure = ProviderError("bad_response", f"response refused: {error}")
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                failure = ProviderError("unavailable", f"could not connect: {error!r}")
            except (httpx.TimeoutException, TimeoutError) as error:
                failure = ProviderError("timeout", f"no data for too long: {error!r}")
            except httpx.HTTPError as error:
                failure = ProviderError("unavailable", f"connection failed: {error!r}")

            if failure is not None and state.finished and state.text_seen:
                # The API had already said the answer was complete; only the farewell got lost.
                logger.info("%s: ignoring an error after the answer was complete: %s", self.name, failure)
                failure = None
            if failure is None:
                failure = _end_of_stream_failure(state)
            if failure is None:
                usage = state.usage()
                if usage is not None:
                    yield usage
                return

            failure.partial = state.text_seen
            wait = _retry_wait(failure, attempt)
            if failure.partial or attempt >= config.max_retries or wait is None or time.monotonic() + wait >= deadline:
                logger.warning(
                    "%s: giving up after %d attempt(s): %s: %s", self.name, attempt + 1, failure.kind, failure
                )
                raise failure
            logger.warning(
                "%s: attempt %d failed (%s: %s); retrying in %.1fs",
                self.name,
                attempt + 1,
                failure.kind,
                failure,
                wait,
            )
            await asyncio.sleep(wait)
            attempt += 1


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def shared_client() -> httpx.AsyncClient:
    """The process's pooled client for the running event loop (a web process has one): connections to a
    provider, and their TLS sessions, are kept from answer to answer instead of a handshake per answer.
    Each request carries its own timeouts and deadline; closing a response (a visitor who left) closes
    that stream only. Every answer streaming at once holds one connection: httpx's default of 100 made
    the 101st answer of a process wait for a free one, seconds before its first token."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        limits = httpx.Limits(
            max_connections=settings.LLM_MAX_CONNECTIONS,
            max_keepalive_connections=settings.LLM_KEEPALIVE_CONNECTIONS,
        )
        client = _clients[loop] = outbound.async_client(limits=limits)
    return client


async def _check_response(response: httpx.Response) -> None:
    """Raise the ProviderError that a non-streaming reply stands for."""
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            raise ProviderError("bad_response", f"expected an event stream, got {content_type!r}")
        return
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    detail = f"HTTP {status}: {body[:ERROR_BODY_BYTES].decode('utf-8', 'replace')}"
    if status == 429:
        retry_after = outbound.retry_after_seconds(response.headers.get("retry-after"))
        raise ProviderError("rate_limited", detail, retry_after=retry_after)
    if status >= 500:
        raise ProviderError("unavailable", detail)
    if status in (401, 403):
        raise ProviderError("auth", detail)
    raise ProviderError("bad_response", detail)


def _retry_wait(failure: ProviderError, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``failure``, or None when it is not worth retrying."""
    if failure.kind not in _RETRYABLE_KINDS:
        return None
    if failure.retry_after is not None:
        return min(failure.retry_after, MAX_RETRY_WAIT)
    return RETRY_BACKOFF * 2**attempt


async def _drain(chunks: AsyncIterator[bytes], seconds: float = 0.5, most: int = 65536) -> None:
    """Read what is left of a finished stream (its terminator, the last chunk's end), briefly and boundedly:
    a connection whose body was read to its end goes back to the pool for the next answer."""
    read = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in chunks:
                read += len(chunk)
                if read > most:
                    return
    except (TimeoutError, httpx.HTTPError):
        return


def _end_of_stream_failure(state: _StreamState) -> ProviderError | None:
    """The error that a stream ending in ``state`` stands for, or None when it ended well."""
    if state.text_seen:
        if state.finished:
            return None
        return ProviderError("unavailable", "the stream ended before the answer was complete")
    if state.finished or state.malformed:
        return ProviderError("bad_response", "the stream carried no text")
    return ProviderError("unavailable", "the stream ended before any text")


def _system_text(messages: list[dict]) -> str:
    return "\n\n".join(m["content"] for m in messages if m["role"] == "system")
