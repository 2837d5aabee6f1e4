"""JavaScript rendering of crawled pages in headless Chromium, for single-page-app sites (opt-in).

The crawler fetches each page itself (robots.txt, conditional requests, size cap) and hands the HTML
here. Chromium never touches the network: every request the page makes is intercepted and either
answered from the HTML already fetched (the page itself), fetched through the one SSRF-safe client
(``chatsite.lib.http``: scripts, styles, XHR/fetch data, the same checks as every other outbound
request), or aborted (images, media, fonts, sockets, non-GET requests, navigations away, anything
past ``MAX_SUBREQUESTS``). What comes back is the DOM after the page's scripts ran.

Chromium is found at ``settings.CHROMIUM_PATH``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on the PATH (``apt-get install chromium``).
"""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.conf import settings

from chatsite.lib import http as outbound

logger = logging.getLogger(__name__)

SKIPPED_RESOURCES = {"image", "media", "font", "websocket", "eventsource", "manifest", "texttrack", "ping"}
MAX_SUBREQUESTS = 60  # per page: scripts, styles and data the page loads
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# A root process cannot use Chromium's sandbox; the browser reaches nothing but our interceptor.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class RenderingUnavailable(Exception):
    """Chromium or Playwright is missing on this worker."""


def chromium_path() -> str:
    configured = settings.CHROMIUM_PATH
    path = configured or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), "")
    if not path or not os.path.exists(path):
        raise RenderingUnavailable(
            "JavaScript rendering needs Chromium on the worker (apt-get install chromium, or set CHROMIUM_PATH)"
        )
    return path


class PageRenderer:
    """One headless Chromium for a crawl; ``render(url, html)`` per page. Use as a context manager.

    Playwright's synchronous API runs an event loop in the thread that uses it, and Django refuses
    database calls from a thread with a running loop; so the browser lives in a thread of its own
    and the caller's thread (the crawl task, which writes pages) only waits for results.
    """

    def __init__(self, *, timeout: float | None = None, user_agent: str = ""):
        self.timeout_ms = int(1000 * (timeout or settings.CRAWL_RENDER_TIMEOUT))
        self.user_agent = user_agent or settings.OUTBOUND_USER_AGENT
        self._playwright = self._browser = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")

    def __enter__(self) -> PageRenderer:
        try:
            self._thread.submit(self._start).result()
        except BaseException:
            self._thread.shutdown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._thread.submit(self._stop).result()
        self._thread.shutdown()

    def render(self, url: str, html: str) -> str:
        """The page's HTML after its scripts ran (``html`` is what the crawler fetched from ``url``)."""
        return self._thread.submit(self._render, url, html).result()

    def _start(self) -> None:
        path = chromium_path()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise RenderingUnavailable("JavaScript rendering needs the playwright package") from exc
        self._playwright = sync_playwright().start()
        args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            self._browser = self._playwright.chromium.launch(executable_path=path, args=args, headless=True)
        except Exception as exc:
            self._playwright.stop()
            raise RenderingUnavailable(f"Chromium did not start: {exc}") from exc

    def _stop(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    def _render(self, url: str, html: str) -> str:
        context = self._browser.new_context(
            user_agent=self.user_agent, service_workers="block", accept_downloads=False, java_script_enabled=True
        )
        subrequests = 0

        def intercept(route, request):
            nonlocal subrequests
            if request.url.split("#", 1)[0] == url.split("#", 1)[0] and request.is_navigation_request():
                return route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
            if (
                request.is_navigation_request()
                or request.method != "GET"
                or request.resource_type in SKIPPED_RESOURCES
                or subrequests >= MAX_SUBREQUESTS
            ):
                return route.abort()
            subrequests += 1
            try:
                response = outbound.fetch(request.url, headers={"Accept": request.headers.get("accept", "*/*")})
            except (outbound.OutboundRefused, outbound.ResponseTooLarge, httpx.HTTPError) as exc:
                logger.info("rendering %s: %s not loaded (%s)", url, request.url, exc)
                return route.abort()
            content_type = response.headers.get("content-type", "application/octet-stream")
            route.fulfill(status=response.status_code, headers={"content-type": content_type}, body=response.content)

        try:
            page = context.new_page()
            page.route("**/*", intercept)
            page.goto(url, wait_until="load", timeout=self.timeout_ms)
            try:  # data the scripts fetch after "load"
                page.wait_for_load_state("networkidle", timeout=self.timeout_ms)
            except Exception:  # a page that keeps polling: take the DOM as it is
                pass
            return page.content()
        finally:
            context.close()
