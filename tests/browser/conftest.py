"""Fixtures of the browser tests: headless Chromium (Playwright) against the real app under uvicorn.

The platform runs on http://127.0.0.1:<port>, on the test database. Host pages carrying the snippet
come from a second server, reached as http://localhost:<port> (the assistant's allowed domain, and
another site than the platform, so the iframe is third-party) or as http://127.0.0.1:<port> (not
allowed). A third server only records requests (a sentinel: what must never be fetched). Every test
here is marked ``browser``; without Chromium at /usr/bin/chromium they are skipped.
"""

import os
import subprocess
import sys

import pytest

from chatsite.db import database_url
from tests.browser.helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, INSTALL, PRICING, Recorder, free_port
from tests.conftest import REPO, wait_for
from tests.factories import index_pages, make_assistant, make_team, make_user

# A browser test that fails is run again, up to twice (pytest-rerunfailures), and the rerun is reported:
# about one run in five of the widget's tests, under load on two cores, the keys Playwright sends to the
# chat's cross-origin frame never reach its input (no keydown, no request, the server idle; seen
# before and after this round's changes, not yet explained). A real failure fails all three runs.
BROWSER_RERUNS = 2


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS))
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(reason="Chromium is missing at /usr/bin/chromium (apt-get install chromium)")
                )


@pytest.fixture(scope="module")
def host_site():
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def sentinel():
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def platform(django_db_setup, django_db_blocker, smtp_server):
    """The app under uvicorn (ASGI, so answers stream), on the test database, sending its emails to
    the tests' SMTP server (``smtp_server.mailbox``); yields its base URL."""
    import socket

    from django.db import connection

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(connection.settings_dict),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="false",
        LLM_BASE_URL="",
        LLM_MODEL="",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        PYTHONUNBUFFERED="1",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "browser-uvicorn.log", "wb")
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
            "--no-proxy-headers",  # as deployed: chatsite.lib.clients decides whom to believe
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        assert process.poll() is None, "uvicorn exited; see test-artifacts/browser-uvicorn.log"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.2, message="uvicorn")
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread, which Django's ORM takes for an async
    # context; the tests only touch the ORM between browser calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture
def owner(transactional_db):
    return make_user()


@pytest.fixture
def assistant(owner, host_site):
    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.greeting = "Hi! Ask me about the gadget."
    assistant.save()
    index_pages(
        assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL}, reuse_vectors=True
    )
    return assistant
