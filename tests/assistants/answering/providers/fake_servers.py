"""Local HTTP servers that play a language-model API, for the provider tests.

A :class:`FakeServer` listens on 127.0.0.1 (a random port) in a background thread, records every
request it receives, and answers each with the next scripted :class:`Reply` (the last one repeats).
Replies are written with ``Transfer-Encoding: chunked``, one chunk per piece, flushed at once, so the
client sees a real stream. The ``*_script`` functions build the exact event streams of the OpenAI,
Anthropic and Gemini APIs.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import POLL_INTERVAL

#: How often a trickling reply sends a keep-alive comment while waiting for the client to leave.
TRICKLE_INTERVAL = 0.02


@dataclass
class Reply:
    """One scripted response.

    ``body`` pieces are written one chunk each; a float instead pauses that many seconds (cut short
    when the server stops). ``finish=False`` drops the connection without the final empty chunk,
    like an upstream that died mid-answer. ``trickle=True`` keeps sending SSE comments after the body
    until the client closes the connection, which sets :attr:`FakeServer.client_gone`.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    body: list[bytes | float] = field(default_factory=list)
    finish: bool = True
    trickle: bool = False


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A plain JSON response, such as an API's error object."""
    return Reply(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=[json.dumps(payload).encode()],
    )


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names in lower case
    json: Any


class _Server(ThreadingHTTPServer):
    # A provider takes many connections at once; socketserver's default backlog of 5 reset some of a burst.
    request_queue_size = 256


class FakeServer:
    """A scripted HTTP server; use as a context manager or call start() and stop()."""

    def __init__(self, replies: list[Reply], *, keep_alive: bool = False):
        self.replies = replies
        self.keep_alive = keep_alive  # keep the connection after a reply (else every reply closes it)
        self.connections = 0  # connections accepted
        self.requests: list[RecordedRequest] = []
        self.client_gone = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(POLL_INTERVAL,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end any reply still pausing or trickling."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]


def _make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server.connections += 1

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = server._record(
                RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    json=json.loads(raw) if raw else None,
                )
            )
            self.close_connection = not server.keep_alive
            try:
                self._send(reply)
            except OSError:  # the client went away
                server.client_gone.set()

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            if not server.keep_alive:
                self.send_header("Connection", "close")
            self.end_headers()
            for piece in reply.body:
                if isinstance(piece, float):
                    if server._stopping.wait(piece):
                        return
                else:
                    self._chunk(piece)
            while reply.trickle and not server._stopping.wait(TRICKLE_INTERVAL):
                self._chunk(b": keep-alive\n\n")
            if reply.finish:
                self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


# --- The three wire formats ---------------------------------------------------------------------


@dataclass
class Script:
    """An answer's event stream: ``prefix`` events, one event per token, then ``suffix`` events."""

    prefix: list[bytes]
    tokens: list[bytes]
    suffix: list[bytes]

    def full(self) -> list[bytes]:
        return self.prefix + self.tokens + self.suffix

    def cut(self, tokens: int) -> list[bytes]:
        """The stream up to and including the first ``tokens`` tokens, with no ending."""
        return self.prefix + self.tokens[:tokens]


def _data(payload: Any, end: bytes = b"\n\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + end


def _event(name: str, payload: Any) -> bytes:
    return f"event: {name}\n".encode() + _data(payload)


def openai_script(tokens: list[str], prompt_tokens: int, completion_tokens: int) -> Script:
    """``chat.completion.chunk`` objects, a usage chunk with ``choices: []`` and ``data: [DONE]``."""

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return _data(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "gpt-test",
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                "usage": None,
            }
        )

    usage = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Script(
        prefix=[chunk({"role": "assistant", "content": "", "refusal": None}), b": keep-alive\n\n"],
        tokens=[chunk({"content": token}) for token in tokens],
        suffix=[chunk({}, "stop"), _data(usage), b"data: [DONE]\n\n"],
    )


def anthropic_script(tokens: list[str], prompt_tokens: int, completion_tokens: int) -> Script:
    """The Messages API stream: message_start ... content_block_delta ... message_stop, with a ping."""
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-test",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
    }
    return Script(
        prefix=[
            _event("message_start", {"type": "message_start", "message": message}),
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            _event("ping", {"type": "ping"}),
        ],
        tokens=[
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}},
            )
            for token in tokens
        ],
        suffix=[
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": completion_tokens},
                },
            ),
            _event("message_stop", {"type": "message_stop"}),
        ],
    )


def anthropic_error(error_type: str, message: str) -> bytes:
    """An ``event: error`` as the Messages API sends it mid-stream."""
    return _event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def gemini_script(tokens: list[str], prompt_tokens: int, completion_tokens: int) -> Script:
    """``streamGenerateContent?alt=sse`` chunks (CRLF-separated, as Google sends them); the last
    token's chunk carries ``finishReason`` and the full ``usageMetadata``."""

    def chunk(token: str, last: bool) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": token}], "role": "model"}, "index": 0}
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        if last:
            candidate["finishReason"] = "STOP"
            usage = {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": completion_tokens,
                "totalTokenCount": prompt_tokens + completion_tokens,
            }
        payload = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-test"}
        return _data(payload, b"\r\n\r\n")

    return Script(
        prefix=[],
        tokens=[chunk(token, index == len(tokens) - 1) for index, token in enumerate(tokens)],
        suffix=[],
    )


SCRIPTS = {"openai": openai_script, "anthropic": anthropic_script, "gemini": gemini_script}
