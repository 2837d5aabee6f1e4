"""Hostile HTTP servers and payloads for the outbound-client tests: real servers speaking HTTP/1.1 on
a socket (loopback, or an address inside a test's network namespace), and compression bombs built
without ever holding their decoded size in memory.

A :class:`Server` records every connection it accepts and every request it parses: a "sentinel" is
a server that nothing may reach, and the tests assert that it counted zero connections.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import POLL_INTERVAL

SEGMENT = 1 << 24  # zeros per deflate segment of a bomb


def gzip_of_zeros(size: int) -> bytes:
    """A gzip member that decodes to ``size`` zero bytes, built in well under a second for 1 GiB.

    zlib's output for ``SEGMENT`` zeros followed by a full flush does not depend on what came
    before (the flush resets the dictionary), so one segment is compressed and repeated.
    """
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    full, rest = divmod(size, SEGMENT)
    segment = deflater.compress(b"\0" * SEGMENT) + deflater.flush(zlib.Z_FULL_FLUSH) if full else b""
    tail = deflater.compress(b"\0" * rest) + deflater.flush(zlib.Z_FINISH)
    crc = 0
    zeros = b"\0" * min(size, SEGMENT) if size else b""
    for _ in range(full):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(b"\0" * rest, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + segment * full + tail + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


def stacked_gzip_bomb(size: int, layers: int = 2) -> bytes:
    """``size`` zeros, gzip-compressed ``layers`` times (served as ``Content-Encoding: gzip, gzip``)."""
    body = gzip_of_zeros(size)
    for _ in range(layers - 1):
        body = gzip.compress(body, 9, mtime=0)
    return body


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def respond(status: int = 200, body: bytes = b"ok", headers: dict | None = None):
    """A route that answers with a fixed response (a Content-Length unless ``headers`` has one)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    return route


def redirect(location: str, status: int = 302):
    return respond(status, b"", {"Location": location})


def drip(
    *,
    interval: float,
    count: int = 1000,
    piece: bytes = b"x",
    status: int = 200,
    headers: dict | None = None,
    in_headers: bool = False,
):
    """A route that sends ``piece`` every ``interval`` seconds, ``count`` times (a slow-loris server).

    ``in_headers``: the drip comes before the end of the headers (one more header line's bytes each
    time), so nothing but a wall-clock deadline stops a client from waiting for it.
    """

    def route(handler: BaseHTTPRequestHandler) -> None:
        server = handler.server.owner
        handler.close_connection = True
        try:
            if in_headers:
                handler.wfile.write(f"HTTP/1.1 {status} OK\r\n".encode())
                for _ in range(count):
                    handler.wfile.write(b"X-Drip: 1\r\n")
                    handler.wfile.flush()
                    if server.stopped.wait(interval):
                        return
                return
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(piece) * count))
            handler.end_headers()
            handler.wfile.flush()
            with server.lock:
                server.dripping += 1
            try:
                for _ in range(count):
                    handler.wfile.write(piece)
                    handler.wfile.flush()
                    if server.stopped.wait(interval):
                        return
            finally:
                with server.lock:
                    server.dripping -= 1
        except OSError:
            return  # the client hung up: what a deadline does

    return route


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self) -> None:
        server = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        with server.lock:
            server.requests.append(Recorded(self.command, self.path, headers, body))
        route = server.routes.get(self.path.split("?", 1)[0]) or server.routes.get("*") or respond()
        route(self)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = handle_any

    def log_message(self, *args) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        connection = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return connection


class _HTTP6Server(_HTTPServer):
    address_family = socket.AF_INET6


class Server:
    """A real HTTP/1.1 server on ``host:port`` (0: any free port) in a thread of this process.

    ``connections`` counts accepted TCP connections, ``requests`` the requests parsed; ``routes``
    maps a path (``"*"``: any other) to a function of the request handler.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, routes: dict | None = None):
        self.requests: list[Recorded] = []
        self.routes: dict = dict(routes or {})
        self.connections = 0
        self.dripping = 0  # responses being dripped right now
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        server_class = _HTTP6Server if ":" in host else _HTTPServer
        self.httpd = server_class((host, port), _Handler)
        self.httpd.owner = self
        self.host = host
        self.port = self.httpd.server_address[1]
        self.hostport = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(POLL_INTERVAL,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.hostport}{path}"

    @property
    def hits(self) -> int:
        """Connections accepted: what a sentinel must never see."""
        return self.connections

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.connections = 0

    def close(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
