"""Local HTTP servers for tests, each on its own thread on a free loopback port.

``socketserver`` checks for a shutdown request once per poll interval (half a second by default): a test
that stops its server would wait for that, ~0.25 s on average, hundreds of times in a run. Servers started
here look every 20 ms."""

from __future__ import annotations

import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer

POLL_INTERVAL = 0.02


def free_port() -> int:
    """A loopback port free now (for a server started in another process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_serving(server: BaseServer) -> BaseServer:
    """Serve ``server`` on a daemon thread; ``server.shutdown()`` stops it within ``POLL_INTERVAL``."""
    threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True).start()
    return server


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    start_serving(server)
    return server, f"http://127.0.0.1:{server.server_address[1]}"
