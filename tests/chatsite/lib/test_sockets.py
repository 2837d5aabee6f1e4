"""The outbound client's asyncio sockets (``chatsite.lib.sockets``), through the real client
(``chatsite.lib.http.async_client``) against real servers on 127.0.0.1 in the same event loop."""

from __future__ import annotations

import asyncio
import socket

import anyio
import httpx
import pytest

from chatsite.lib import sockets
from chatsite.lib.http import async_client


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = []
    return settings


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length) if length else b""


async def _serve(handler):
    """A server on a free loopback port answering every connection with ``handler(reader, writer)``;
    returns it and its base URL."""

    async def connection(reader, writer):
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_stream_of_small_pieces_arrives_whole_without_anyio_on_the_way(monkeypatch):
    """A model's answer is hundreds of small pieces, each one socket read. anyio's per-operation
    costs were a quarter of relaying them: none of its socket code may run any more."""

    def refused(*args, **kwargs):
        raise AssertionError("anyio was used for a socket operation")

    monkeypatch.setattr(anyio, "fail_after", refused)

    async def pieces(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for n in range(200):
            writer.write(_chunk(b"data: %d\n\n" % n))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def scenario():
        server, url = await _serve(pieces)
        async with server, async_client(timeout=httpx.Timeout(5.0)) as client:
            async with client.stream("POST", url + "/v1/chat", json={"stream": True}) as response:
                return [line async for line in response.aiter_lines() if line]

    lines = asyncio.run(scenario())
    assert lines == [f"data: {n}" for n in range(200)]


def test_a_large_body_arrives_whole_while_reading_pauses_and_resumes(monkeypatch):
    monkeypatch.setattr(sockets, "HIGH_WATER", 4096)
    monkeypatch.setattr(sockets, "LOW_WATER", 1024)
    body = bytes(range(256)) * 8192  # 2 MiB, sent at once, read slowly
    pauses = []
    pause = sockets._Protocol.data_received

    def counting(self, data):
        was = self.reading_paused
        pause(self, data)
        if self.reading_paused and not was:
            pauses.append(len(self.buffer))

    monkeypatch.setattr(sockets._Protocol, "data_received", counting)

    async def big(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async def scenario():
        server, url = await _serve(big)
        received = bytearray()
        async with server, async_client(timeout=httpx.Timeout(10.0), max_bytes=len(body)) as client:
            async with client.stream("GET", url + "/big") as response:
                async for piece in response.aiter_raw():
                    received += piece
                    if len(received) < 256 * 1024:
                        await asyncio.sleep(0.001)
        return bytes(received)

    assert asyncio.run(scenario()) == body
    assert pauses, "the protocol never stopped reading although its buffer passed the high-water mark"
    assert max(pauses) < 4096 + 256 * 1024  # at most one socket read past the mark


def test_a_large_request_body_is_sent_whole_to_a_slow_reader():
    body = b"x" * (4 * 1024 * 1024)

    async def slow(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
        )
        received = 0
        while received < length:
            received += len(await reader.read(65536))
            await asyncio.sleep(0.0005)
        answer = str(received).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
        await writer.drain()

    async def scenario():
        server, url = await _serve(slow)
        async with server, async_client(timeout=httpx.Timeout(20.0)) as client:
            response = await client.post(url + "/upload", content=body)
        return response.text

    assert asyncio.run(scenario()) == str(len(body))


def test_a_server_that_stops_sending_is_a_read_timeout():
    async def stall(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(b"data: first\n\n"))
        await writer.drain()
        await asyncio.sleep(5)

    async def scenario():
        server, url = await _serve(stall)
        received = []
        async with server, async_client(timeout=httpx.Timeout(5.0, read=0.3)) as client:
            try:
                async with client.stream("GET", url + "/stall") as response:
                    async for piece in response.aiter_raw():
                        received.append(piece)
            except httpx.ReadTimeout:
                return received, "read timeout"
        return received, "no timeout"

    assert asyncio.run(scenario()) == ([b"data: first\n\n"], "read timeout")


def test_a_kept_connection_the_server_closed_is_not_used_again():
    """A provider closes idle connections; the next answer must get a new one, not a broken stream."""
    connections = []

    async def once(reader, writer):
        connections.append(writer)
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Keep-alive was not refused, but the server closes the connection a moment later.
        await asyncio.sleep(0.05)

    async def scenario():
        server, url = await _serve(once)
        async with server, async_client(timeout=httpx.Timeout(5.0)) as client:
            first = await client.get(url + "/a")
            await asyncio.sleep(0.3)  # the server has closed it meanwhile
            second = await client.get(url + "/b")
        return first.text, second.text

    assert asyncio.run(scenario()) == ("ok", "ok")
    assert len(connections) == 2


def test_a_closed_port_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        async with async_client(timeout=httpx.Timeout(5.0)) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(scenario())


def test_a_reader_cancelled_mid_stream_leaves_the_client_usable():
    """A visitor who leaves cancels the upstream read; the client serves the next answer."""

    async def slow_then_fast(reader, writer):
        while True:
            await _read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(b"first"))
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.write(_chunk(b"second") + b"0\r\n\r\n")
            await writer.drain()

    async def scenario():
        server, url = await _serve(slow_then_fast)
        async with server, async_client(timeout=httpx.Timeout(5.0)) as client:

            async def read_all():
                async with client.stream("GET", url + "/s") as response:
                    return [piece async for piece in response.aiter_raw()]

            task = asyncio.create_task(read_all())
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await read_all()

    assert asyncio.run(scenario()) == [b"first", b"second"]
