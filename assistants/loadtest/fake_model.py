"""A fake language model for load tests: the OpenAI streaming format, at a set pace, counting.

``python -m assistants.loadtest.fake_model --port P --ttft 0.3 --rate 20 --tokens 200`` serves
``POST /v1/chat/completions`` (``stream: true``): after ``ttft`` seconds the first token, then one token
every ``1/rate`` seconds, ``tokens`` in all, then ``[DONE]`` — each token cites ``[1]``. ``GET /stats``
answers how many requests came, how many streams ended because the client went away (cancellations),
how many finished, and how many are open. Plain asyncio on uvloop, no framework, one process: hundreds of
streams at once cost it little (it shares the machine with the server it plays a provider for).
Connections stay open from answer to answer, as a provider's do. Runs on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop

STATS = {"requests": 0, "cancelled": 0, "finished": 0, "open": 0}


def _chunk(text: str, finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-load",
        "object": "chat.completion.chunk",
        "model": "load",
        "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}],
    }
    body = f"data: {json.dumps(payload)}\n\n".encode()
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, options) -> None:
    """One connection: request after request on it, as a provider keeps its connections open."""
    try:
        while await _answer(reader, writer, options):
            pass
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, options) -> bool:
    """Serve one request; False when the connection is over."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False  # the client closed a kept connection
    lines = head.decode("latin1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length") or 0)
    if length:
        await reader.readexactly(length)
    if method == "GET" and path == "/stats":
        body = json.dumps(STATS).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        return True
    STATS["requests"] += 1
    STATS["open"] += 1
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(options.ttft)
        for n in range(options.tokens):
            if n:
                await asyncio.sleep(1 / options.rate)
            writer.write(_chunk("word [1] " if n % 10 == 9 else "word "))
            await writer.drain()
            if reader.at_eof():
                raise ConnectionResetError
        writer.write(
            _chunk("", "stop") + b"%x\r\n%s\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n") + b"0\r\n\r\n"
        )
        await writer.drain()
        STATS["finished"] += 1
        return True
    except (ConnectionError, asyncio.IncompleteReadError):
        STATS["cancelled"] += 1
        return False
    finally:
        STATS["open"] -= 1


async def _main(options) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(r, w, options), "127.0.0.1", options.port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.3)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=200)
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
