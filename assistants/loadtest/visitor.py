"""One visitor of the load generator: a question posted, its streamed answer read as it arrives.

The generator shares the machine with the server it measures, so what it spends the server lacks. A
visitor here is an asyncio protocol on a connection of its own (as a browser's request reaches the web
processes behind a proxy) whose response is parsed by httptools, the C parser uvicorn itself uses, in
its callbacks: no task wakes per event, and of the event stream only the event names are read, which is
all the generator counts. A visitor who leaves closes the connection at the moment it chose.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httptools


@dataclass
class Visit:
    """What one visitor saw: ``outcome`` is "done", "departed" or an error's kind ("http 503", "error event",
    "stream broken", "timeout", or the connection's exception class); ``first_token`` is the seconds
    from the request to the first ``token`` event (None before one came)."""

    outcome: str = ""
    first_token: float | None = None


class _Visitor(asyncio.Protocol):
    def __init__(self, request: bytes, leave_after: float | None, begin: float):
        self.request = request
        self.leave_after = leave_after  # seconds after the request, once the first token came
        self.begin = begin
        self.visit = Visit()
        self.finished = asyncio.get_running_loop().create_future()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.pending = b""  # the start of an event whose end has not come yet
        self.ended = False  # the stream's ``done`` event came

    # --- the connection ---------------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._finish(f"bad response: {error}")

    def connection_lost(self, exc):
        self._finish(type(exc).__name__ if exc else "stream broken")

    # --- the response (httptools' callbacks) ------------------------------------------------------

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status != 200 or self.finished.done():
            return
        self.pending += body
        *events, self.pending = self.pending.split(b"\n\n")
        for event in events:
            name = event.partition(b"\n")[0]
            if name == b"event: token" and self.visit.first_token is None:
                self.visit.first_token = time.monotonic() - self.begin
                if self.leave_after is not None:
                    delay = max(0.0, self.begin + self.leave_after - time.monotonic())
                    asyncio.get_running_loop().call_later(delay, self._finish, "departed")
            elif name == b"event: error":
                self._finish("error event")
            elif name == b"event: done":
                self.ended = True

    def on_message_complete(self) -> None:
        if self.status != 200:
            self._finish(f"http {self.status}")
        else:
            self._finish("done" if self.ended else "stream broken")

    def _finish(self, outcome: str) -> None:
        if self.finished.done():
            return
        self.visit.outcome = outcome
        self.finished.set_result(self.visit)
        if self.transport is not None:
            self.transport.close()


async def visit(
    host: str, port: int, path: str, body: bytes, *, headers: dict[str, str], leave_after: float | None, timeout: float
) -> Visit:
    """POST ``body`` (JSON) to ``path`` on a new connection and read the event stream to its end, or until
    ``leave_after`` seconds after the request once the first token came (the visitor leaves)."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    begin = time.monotonic()
    loop = asyncio.get_running_loop()
    protocol: _Visitor | None = None
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(lambda: _Visitor(request, leave_after, begin), host, port)
            return await protocol.finished
    except TimeoutError:
        outcome = "timeout"
    except OSError as error:
        outcome = type(error).__name__
    if protocol is not None and protocol.transport is not None:
        protocol.transport.abort()
    return Visit(outcome, protocol.visit.first_token if protocol is not None else None)
