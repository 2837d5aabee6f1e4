"""Fixtures of the browser tests: headless Chromium (Playwright) against the real app under uvicorn.

The platform runs on http://127.0.0.1:<port>, on the test database. Host pages carrying the snippet
come from a second server, reached as http://localhost:<port> (the assistant's allowed domain, and
another site than the platform, so the iframe is third-party) or as http://127.0.0.1:<port> (not
allowed). A third server only records requests (a sentinel: what must never be fetched). Every test
here is marked ``browser``; without Chromium at /usr/bin/chromium they are skipped.
"""

import os

import pytest

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, INSTALL, PRICING, Recorder
from tests.factories import index_pages, make_assistant, make_team, make_user
from tests.live_server import start_uvicorn, stop

# A browser test that fails is run again, up to twice (pytest-rerunfailures), and the rerun is reported:
# under load on two cores, the keys Playwright sent to the chat's cross-origin frame sometimes never
# reached its input (no keydown, no request) while Chromium ran the frame in a process of its own
# (`CHROMIUM_ARGS` now keeps it in the page's). A real failure fails all three runs.
BROWSER_RERUNS = int(os.environ.get("CHATSITE_BROWSER_RERUNS", "2"))  # 0: see every failure, as when looking into one


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
def loopback_sites_may_be_crawled():
    """Websites on loopback may be crawled (``OUTBOUND_ALLOW_PRIVATE``) by this process and by what it
    starts afterwards (the platform, workers), for a module's tests: a module asks for it with
    ``pytestmark = pytest.mark.usefixtures("loopback_sites_may_be_crawled")``, so it comes before
    the platform."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OUTBOUND_ALLOW_PRIVATE", "true")
        yield


@pytest.fixture(scope="session")
def _platforms(django_db_setup, smtp_server):
    """The platforms started in this test process, by the environment they were started in; stopped at
    the end of the session. Starting one (a process that imports Django and PyTorch) took seconds per
    module; what it holds between requests is what it held between a module's tests before."""
    processes: dict[tuple, tuple] = {}
    yield processes
    for process, _ in processes.values():
        stop(process)


@pytest.fixture(scope="module")
def platform(_platforms, django_db_blocker, smtp_server):
    """The app under uvicorn (ASGI, so answers stream), on the test database, sending its emails to
    the tests' SMTP server (``smtp_server.mailbox``); yields its base URL. One per environment for the
    session: modules that allow loopback sites (``loopback_sites_may_be_crawled``) share theirs, the
    others theirs."""
    key = (os.environ.get("OUTBOUND_ALLOW_PRIVATE"),)
    if key not in _platforms or _platforms[key][0].poll() is not None:
        _platforms[key] = start_uvicorn("browser-uvicorn.log", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_server.port))
    return _platforms[key][1]


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
    page.console = []  # every frame's console errors and warnings, for a failure's message
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
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
    index_pages(assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL})
    return assistant
