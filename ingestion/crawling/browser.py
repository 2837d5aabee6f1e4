"""JavaScript rendering of crawled pages in headless Chromium, for single-page-app sites (opt-in).

The crawler fetches each page itself (robots.txt, conditional requests, size cap) and hands the HTML
here. Chromium has no network of its own:

* every request of every page, popup, frame and worker of the browser context is intercepted at the
  context and either answered from the HTML already fetched (the rendered page's own document, once),
  fetched through the one SSRF-safe client (``chatsite.lib.http``: scripts, styles and XHR/fetch data
  of the rendered page, with the same checks as every other outbound request), or refused: images,
  media, fonts, beacons, event streams, non-GET requests, navigations away (links, form posts, meta
  refresh, ``location`` changes, iframes), popups (each is closed as it opens), anything past
  ``MAX_SUBREQUESTS``. WebSockets are refused, service workers blocked;
* a request the interception never sees (shared workers, speculation-rules prefetch and prerender,
  WebRTC over TCP, preconnects, the browser's own background traffic) meets the backstop: Chromium's
  only proxy is :class:`RefusingProxy`, a socket server in this process that answers 403 to
  everything, loopback included, and no host name or address resolves except the proxy's own
  (``BACKSTOP_ARGS``).

What comes back is the DOM after the page's scripts ran. Chromium is found at
``settings.CHROMIUM_PATH``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH
(``apt-get install chromium``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socketserver
import threading
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
# The backstop for what the interception misses (chromium_args adds --proxy-server and the host
# resolver rules). Checked with Chromium 156 by tests/ingestion/crawling/test_rendering_isolation.py:
# the refusing proxy and the resolver rules each hold alone; without the WebRTC policy, STUN reaches
# UDP ports. The last three flags are belt and braces, not tested one by one.
BACKSTOP_ARGS = [
    "--proxy-bypass-list=<-loopback>",  # else Chromium sends loopback addresses past the proxy
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",  # WebRTC: no UDP (STUN); TCP only via the proxy
    "--disable-quic",  # no HTTP/3 over UDP
    "--no-pings",  # no <a ping> auditing requests
    "--disable-domain-reliability",  # no network error reports
]
# The proxy listens on a loopback address of its own, so that the resolver rules can exclude it alone:
# then even a connection that skipped the proxy cannot reach 127.0.0.1. On systems where only
# 127.0.0.1 is configured (not Linux), the proxy falls back to it.
PROXY_HOSTS = ("127.0.0.2", "127.0.0.1")


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


def chromium_args(proxy_host: str, proxy_port: int) -> list[str]:
    """Chromium's command line: no network but the refusing proxy at ``proxy_host:proxy_port``."""
    return [
        *CHROMIUM_ARGS,
        f"--proxy-server=http://{proxy_host}:{proxy_port}",
        # Every host name and IP address fails to resolve, but the proxy's.
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {proxy_host}",
        *BACKSTOP_ARGS,
    ]


class RefusingProxy:
    """An HTTP proxy on loopback that answers every request with 403 and counts the attempts.

    Chromium is launched with this as its only proxy, so a request that the interception missed ends
    here instead of on the network. ``attempts`` counts connections; ``requests`` keeps the first lines
    of the latest ones (``CONNECT host:port``, ``GET http://…``; empty for a bare preconnect).
    """

    REMEMBERED = 50

    def __init__(self):
        self._lock = threading.Lock()
        self.attempts = 0
        self.requests: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                try:
                    head = self.request.recv(4096)
                except OSError:
                    head = b""
                proxy._record(head.split(b"\r\n", 1)[0].decode("latin-1")[:200])
                try:
                    self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False

        for host in PROXY_HOSTS:
            try:
                self._server = Server((host, 0), Handler)
                break
            except OSError:
                if host == PROXY_HOSTS[-1]:
                    raise
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="refusing-proxy", daemon=True
        )
        self._thread.start()

    def _record(self, line: str) -> None:
        with self._lock:
            self.attempts += 1
            self.requests = [*self.requests, line][-self.REMEMBERED :]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _page_of(request):
    """The page a request comes from; None when Playwright cannot tell (a popup's first navigation)."""
    try:
        return request.frame.page
    except Exception:
        return None


class PageRenderer:
    """One headless Chromium for a crawl; ``render(url, html)`` per page. Use as a context manager.

    Playwright's synchronous API runs an event loop in the thread that uses it, and Django refuses
    database calls from a thread with a running loop; so the browser lives in a thread of its own
    and the caller's thread (the crawl task, which writes pages) only waits for results. The
    refusing proxy starts before Chromium and stops after it.
    """

    def __init__(self, *, timeout: float | None = None, user_agent: str = ""):
        self.timeout_ms = int(1000 * (timeout or settings.CRAWL_RENDER_TIMEOUT))
        self.user_agent = user_agent or settings.OUTBOUND_USER_AGENT
        self._playwright = self._browser = None
        self.proxy: RefusingProxy | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")

    def __enter__(self) -> PageRenderer:
        try:
            self._thread.submit(self._start).result()
        except BaseException:
            self._thread.submit(self._stop).result()
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
        self.proxy = RefusingProxy()
        self._playwright = sync_playwright().start()
        args = chromium_args(self.proxy.host, self.proxy.port) + (["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            self._browser = self._playwright.chromium.launch(executable_path=path, args=args, headless=True)
        except Exception as exc:
            raise RenderingUnavailable(f"Chromium did not start: {exc}") from exc

    def _stop(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()
        finally:
            self._browser = self._playwright = None
            if self.proxy is not None:
                self.proxy.stop()

    def _render(self, url: str, html: str) -> str:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        context = self._browser.new_context(
            user_agent=self.user_agent, service_workers="block", accept_downloads=False, java_script_enabled=True
        )
        page = None  # the page being rendered; every other page of the context is a popup
        served = False
        subrequests = 0
        escaped = self.proxy.attempts

        def intercept(route, request):
            nonlocal served, subrequests
            origin = _page_of(request)
            if request.is_navigation_request():
                # The rendered page's own document, once. No popups, iframes, form posts, meta refresh or
                # location changes; "aborted" leaves the current document in place (no error page).
                if (
                    not served
                    and page is not None
                    and origin is page
                    and request.frame == page.main_frame
                    and request.method == "GET"
                    and request.url.split("#", 1)[0] == url.split("#", 1)[0]
                ):
                    served = True
                    return route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
                logger.info("rendering %s: navigation to %s refused", url, request.url)
                return route.abort("aborted")
            if (
                origin is not page  # a popup's requests, or a request Playwright cannot place
                or request.method != "GET"
                or request.resource_type in SKIPPED_RESOURCES
                or subrequests >= MAX_SUBREQUESTS
            ):
                return route.abort("blockedbyclient")
            subrequests += 1
            try:
                response = outbound.fetch(request.url, headers={"Accept": request.headers.get("accept", "*/*")})
            except (outbound.OutboundRefused, outbound.ResponseTooLarge, httpx.HTTPError) as exc:
                logger.info("rendering %s: %s not loaded (%s)", url, request.url, exc)
                return route.abort("blockedbyclient")
            content_type = response.headers.get("content-type", "application/octet-stream")
            route.fulfill(status=response.status_code, headers={"content-type": content_type}, body=response.content)

        def refuse_websocket(websocket):
            # Never connect_to_server(): the socket only ever talks to this handler, which closes it.
            logger.info("rendering %s: WebSocket to %s refused", url, websocket.url)
            websocket.close(code=1008, reason="refused")

        def close_popup(popup):
            if popup is not page:
                logger.info("rendering %s: popup %s closed", url, popup.url)
                try:
                    popup.close()
                except Exception:  # closed already, or the context is closing
                    pass

        try:
            context.route("**/*", intercept)
            context.route_web_socket(lambda _url: True, refuse_websocket)
            page = context.new_page()
            context.on("page", close_popup)
            page.goto(url, wait_until="commit", timeout=self.timeout_ms)
            try:
                page.wait_for_load_state("load", timeout=self.timeout_ms)
            except PlaywrightTimeout:  # a page that began a (refused) navigation away while loading
                return page.content()  # never fires "load": take the DOM as it is
            try:  # data the scripts fetch after "load"
                page.wait_for_load_state("networkidle", timeout=self.timeout_ms)
            except Exception:  # a page that keeps polling: take the DOM as it is
                pass
            return page.content()
        finally:
            context.close()
            if self.proxy.attempts > escaped:
                refused = self.proxy.requests[-min(self.proxy.attempts - escaped, RefusingProxy.REMEMBERED) :]
                logger.info("rendering %s: the refusing proxy turned away %s", url, refused)
