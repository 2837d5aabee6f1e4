"""Crawling single-page apps with JavaScript rendering: headless Chromium runs the page's scripts,
and every request the page makes goes through the SSRF-safe client (never the browser's own network)."""

import json
import shutil
from pathlib import Path

import pytest

from tests.ingestion.crawling.test_crawler import Site

pytestmark = pytest.mark.slow  # several seconds a test: make test runs them, make test-fast does not

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not shutil.which("chromium"), reason="Chromium is missing (apt-get install chromium)"
)

SHELL = """<html><head><title>{title}</title><script src="/app.js"></script></head>
<body><div id="app">Loading…</div></body></html>"""
APP = """
const data = location.pathname === "/" ? "/api/home.json" : "/api/second.json";
fetch(SENTINEL + "/leak").catch(() => {});
fetch(data).then(r => r.json()).then(d => {
  const main = document.createElement("main");
  main.innerHTML = `<h1>${d.title}</h1><h2 id="setup">Setup</h2><p>${d.text}</p><a href="/second/">Second</a>`;
  document.getElementById("app").replaceWith(main);
});
"""
TEXT = (
    "The gadget is set up by holding the blue button for five seconds until the light blinks twice. "
    "Then pair it from the companion app under Settings, Devices, Add a device, and wait for the chime. "
)


def spa(sentinel_url: str) -> dict:
    return {
        "/": (200, "text/html", SHELL.format(title="Gadget")),
        "/second/": (200, "text/html", SHELL.format(title="Second")),
        "/app.js": (200, "application/javascript", f"const SENTINEL = {json.dumps(sentinel_url)};" + APP),
        "/api/home.json": (200, "application/json", json.dumps({"title": "Gadget manual", "text": TEXT * 2})),
        "/api/second.json": (200, "application/json", json.dumps({"title": "Second page", "text": TEXT[::-1] * 2})),
    }


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def sites():
    sentinel = Site({"/leak": (200, "text/plain", "leaked")})
    site = Site(spa(sentinel.url))
    yield site, sentinel
    site.server.shutdown()
    sentinel.server.shutdown()


def test_without_rendering_a_script_page_has_no_text(sites):
    site, _ = sites
    events = site.crawl(max_depth=2)
    assert [(e.kind, e.reason) for e in events] == [("skipped", "thin page (8 characters)")]  # "Loading…"
    assert "/api/home.json" not in site.requests


@needs_chromium
def test_rendering_indexes_what_the_scripts_write_through_the_safe_client(sites, settings):
    site, sentinel = sites
    settings.OUTBOUND_ALLOW_PRIVATE = False  # only the site's own host:port is allowed
    settings.OUTBOUND_ALLOWED_HOSTS = [site.host]
    events = site.crawl(max_depth=2, render_javascript=True)
    pages = {e.url.removeprefix(site.url): e.page for e in events if e.kind == "page"}
    assert set(pages) == {"/", "/second/"}  # the link exists only in the rendered DOM
    home = pages["/"]
    assert home.title == "Gadget manual" and "holding the blue button" in home.sections[0].text
    assert ("Setup", "setup") in [(s.heading_path[-1], s.anchor) for s in home.sections]
    # The page's data request came from our client (no browser Sec-Fetch headers), and the
    # script's request to an address the client refuses never reached it.
    data_request = site.request_headers[site.requests.index("/api/home.json")]
    assert not any(name.lower().startswith("sec-fetch") for name in data_request)
    assert sentinel.requests == []


def test_missing_chromium_fails_each_page_with_the_reason(sites, settings):
    site, _ = sites
    settings.CHROMIUM_PATH = "/nonexistent/chromium"
    events = site.crawl(max_depth=2, render_javascript=True)
    assert [e.kind for e in events] == ["failed"]
    assert "needs Chromium" in events[0].reason


@needs_chromium
def test_a_source_created_with_the_option_is_crawled_rendered(db, sites):
    from assistants.forms import WebsiteSourceForm
    from ingestion import services
    from ingestion.models import CrawlRun, Document
    from ingestion.tasks import source_crawl_task
    from tests.factories import make_assistant

    site, _ = sites
    data = {"url": site.url + "/", "max_pages": 5, "max_depth": 2, "render_javascript": "on"}
    form = WebsiteSourceForm(data=data)
    assert form.is_valid(), form.errors
    source = services.source_create_website(assistant=make_assistant(), **form.cleaned_data)
    assert source.settings["render_javascript"] is True
    run = CrawlRun.objects.create(source=source)
    source_crawl_task(run.pk)
    run.refresh_from_db()
    assert run.status in {"indexing", "done"}, run.error  # indexing: the on-commit index tasks do not run here
    assert sorted(Document.objects.filter(source=source).values_list("title", flat=True)) == [
        "Gadget manual",
        "Second page",
    ]
