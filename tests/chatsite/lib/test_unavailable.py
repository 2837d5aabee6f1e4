"""PostgreSQL out of reach answers 503 with Retry-After, not 500 (the scale issue's bounded database use),
through the real ASGI application under a real uvicorn whose database is down."""

import time

import httpx
import pytest

from tests.live_server import start_uvicorn, stop
from tests.servers import free_port


@pytest.fixture(scope="module")
def no_database():
    """The app under uvicorn, its DATABASE_URL a port where nothing listens."""
    process, base = start_uvicorn(
        "unavailable-uvicorn.log",
        DATABASE_URL=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/chatsite",
        DATABASE_POOL_TIMEOUT="0.3",
    )
    yield base
    stop(process)


@pytest.mark.parametrize("path", ["/a/any-assistant/", "/api/v1/assistants", "/embed/pk_x/conversation"])
def test_a_request_that_needs_the_database_gets_503_with_retry_after(no_database, path):
    started = time.monotonic()
    response = httpx.get(no_database + path, headers={"Authorization": "Bearer cs_x_y"}, timeout=30)
    assert response.status_code == 503, response.text[:300]
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
    assert "secret" not in response.text and "127.0.0.1" not in response.text  # says nothing of the server
    assert time.monotonic() - started < 15
