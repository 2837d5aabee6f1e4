"""Health checks for containers (docker-compose.yml, deploy/kubernetes/): exit 0 when healthy.

    python -m chatsite.healthcheck web [URL]   the web process answers HTTP (default http://127.0.0.1:8000/login/)
    python -m chatsite.healthcheck worker      this host's Celery worker answers a ping through the broker

The web check counts any HTTP answer below 500 as healthy, redirects and refusals included: behind a
proxy the probe's Host and scheme are rarely the public ones (a 400 for an unknown host, a 301 to https),
and what it checks is that the process serves requests. A 503 (no database connection to be had) is
unhealthy. The worker check pings ``celery@<hostname>``, the name a worker takes by default.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

WEB_URL = "http://127.0.0.1:8000/login/"
TIMEOUT = 5.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer: report it, do not follow it


def web(url: str = WEB_URL) -> int:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        status = opener.open(url, timeout=TIMEOUT).status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"web: no answer from {url}: {error}", file=sys.stderr)
        return 1
    if status >= 500:
        print(f"web: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


def worker(node: str = "") -> int:
    from chatsite.celery import app

    node = node or f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=TIMEOUT)
    if not any(node in reply for reply in replies):
        print(f"worker: {node} did not answer a ping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] in {"web", "worker"}:
        return web(*argv[2:3]) if argv[1] == "web" else worker(*argv[2:3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
