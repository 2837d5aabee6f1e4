"""PostgreSQL out of reach answers 503 with Retry-After, not 500 (the scale issue's bounded database use),
through the real ASGI application under a real uvicorn whose database is down."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO, wait_for


@pytest.fixture(scope="module")
def no_database():
    """The app under uvicorn, its DATABASE_URL a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://nobody:secret@127.0.0.1:{dead}/chatsite",
        DATABASE_POOL_TIMEOUT="1",
        ALLOWED_HOSTS="127.0.0.1",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "chatsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/help/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, interval=0.3, message="uvicorn")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.parametrize("path", ["/a/any-assistant/", "/api/v1/assistants", "/embed/pk_x/conversation"])
def test_a_request_that_needs_the_database_gets_503_with_retry_after(no_database, path):
    started = time.monotonic()
    response = httpx.get(no_database + path, headers={"Authorization": "Bearer cs_x_y"}, timeout=30)
    assert response.status_code == 503, response.text[:300]
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
    assert "secret" not in response.text and "127.0.0.1" not in response.text  # says nothing of the server
    assert time.monotonic() - started < 15
