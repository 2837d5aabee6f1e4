"""Session-wide fixtures: the real embedded PostgreSQL, a real Redis, real local web servers,
and a real Celery worker process for end-to-end tests."""
import os
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
DRF_SITE = SHARED / "sites" / "drf"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def drf_site():
    """The real Django REST framework documentation site, served on loopback."""
    assert DRF_SITE.is_dir(), f"shared data missing: {DRF_SITE}"
    server, url = serve_directory(DRF_SITE)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def embedder():
    from ingestion.embedding import get_embedder

    return get_embedder("")


def database_url(settings_dict: dict) -> str:
    host = settings_dict["HOST"]
    user = settings_dict["USER"]
    if host.startswith("/"):
        return f"postgresql://{user}:@/{settings_dict['NAME']}?host={host}"
    port = settings_dict["PORT"] or 5432
    return f"postgresql://{user}:{settings_dict['PASSWORD']}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker, in its own process, on the test database and the test Redis."""
    from django.db import connection

    from chatsite.celery import app

    app.control.purge()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(connection.settings_dict),
        OUTBOUND_ALLOW_PRIVATE="true",
        PYTHONUNBUFFERED="1",
    )
    log = open(REPO / ".data" / "test-worker.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "chatsite", "worker", "--queues", "celery,ingest,embed",
         "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def wait_for(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
