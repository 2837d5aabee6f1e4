"""Breadth-first crawling of one website, politely and within its bounds.

The frontier is seeded with the start URL and the pages the site's sitemaps list
(``ingestion.crawling.sitemaps``); pages are fetched with conditional requests when the previous crawl
left validators, and pages with too little text, or the same text as an earlier page, are
skipped with their reason.

The crawler knows nothing of the database: it yields what happened to each URL, and the task
that drives it records pages and progress through the services. Every request goes through the
one SSRF-safe client (``chatsite.lib.http``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from protego import Protego

from chatsite.lib import http as outbound
from ingestion.crawling.browser import PageRenderer, RenderingUnavailable
from ingestion.crawling.politeness import HostGate
from ingestion.crawling.sitemaps import sitemap_locations, sitemap_urls
from ingestion.parsers.html import Page, extract_page

logger = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 500 * 1024  # Google reads the first 500 KiB of a robots.txt
TRACKING_PARAMS = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid"}
SESSION_PARAMS = {"sid", "sessionid", "session_id", "phpsessid", "jsessionid"}
HTML_TYPES = ("text/html", "application/xhtml+xml")
MIN_TEXT_CHARS = 200  # main text shorter than this is a thin page (a stub, a list of links): not indexed
EXCLUDED_REPORT_LIMIT = 20  # URLs excluded by pattern reported one by one; the rest as one count


class SiteUnreachable(Exception):
    """The site did not answer at all (not even with an error page): try the crawl again later."""


@dataclass
class CrawlLimits:
    """Bounds and scope of one crawl.

    ``include`` / ``exclude`` are shell-style globs (:mod:`fnmatch`, case-sensitive) matched
    against a URL's path and query, e.g. ``/docs/*`` or ``*?page=*`` (``*`` also crosses ``/``).
    With ``include`` patterns a URL must match one of them; a URL matching an ``exclude`` pattern
    is never fetched (so links only it leads to are not followed either). The start URL is always
    allowed. ``extra_hosts`` are further ``host[:port]`` names whose pages belong to the site.
    ``render_javascript`` runs each fetched page's scripts in headless Chromium before extraction
    (single-page apps; see ``ingestion.crawling.browser``).

    Without ``include`` patterns and unless ``whole_site``, a crawl stays under the start URL's path
    on its host: started at ``/help/`` (or ``/help``, or ``/help/index.html``) it reads ``/help/...``
    and never ``/login/``. ``sitemap_url`` is read instead of the sitemaps robots.txt lists (or
    ``/sitemap.xml``).
    """

    max_pages: int = 500
    max_depth: int = 5
    delay: float = 0.0  # minimum seconds between two requests to the same host
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    render_javascript: bool = False
    whole_site: bool = False
    sitemap_url: str = ""


@dataclass
class CrawlEvent:
    """What happened to one URL: ``kind`` is page, unchanged (HTTP 304), failed or skipped.

    A page carries the ``etag`` / ``last_modified`` validators its response gave, for the
    conditional request of the next crawl. ``count`` is the number of URLs the event stands for:
    one, except for the summary of excluded URLs beyond those reported one by one.
    """

    kind: str
    url: str
    depth: int
    page: Page | None = None
    reason: str = ""
    found: int = 0  # URLs discovered so far, for progress
    etag: str = ""
    last_modified: str = ""
    count: int = 1


def normalize_url(url: str) -> str:
    """One spelling per page: lower-case host, no default port, fragment, tracking or session ids."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in {("http", 80), ("https", 443)} else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + ("" if port is None or (scheme, port) in {("http", 80), ("https", 443)} else f":{port}")
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in TRACKING_PARAMS | SESSION_PARAMS
    ]
    path = parts.path or "/"
    if path.endswith("/index.html"):
        path = path[: -len("index.html")]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def same_site(url: str, root: str) -> bool:
    a, b = urlsplit(url), urlsplit(root)
    return a.scheme in {"http", "https"} and (a.hostname, a.port) == (b.hostname, b.port)


def path_prefix(url: str) -> str:
    """The folder a crawl started at ``url`` stays in: ``/help/`` for ``/help/``, ``/help`` and
    ``/help/index.html``; ``/`` for the home page."""
    path = urlsplit(url).path or "/"
    if path.endswith("/"):
        return path
    folder, _, last = path.rpartition("/")
    return f"{folder}/" if "." in last else f"{path}/"


class Scope:
    """Which URLs belong to a crawl: the start URL's host and the extra hosts, filtered by patterns.

    Hosts are compared with their ports (``127.0.0.1:8001`` is not ``127.0.0.1:8002``); an extra
    host is written ``host[:port]``, the port only when the URLs carry one. See
    :class:`CrawlLimits` for the ``include`` / ``exclude`` globs.
    """

    def __init__(self, start: str, limits: CrawlLimits):
        self.start = start
        self.roots = [start] + [f"http://{host.strip().lower()}/" for host in limits.extra_hosts if host.strip()]
        self.include, self.exclude = limits.include, limits.exclude
        self.prefix = "/" if limits.whole_site or limits.include else path_prefix(start)

    def on_site(self, url: str) -> bool:
        """Whether ``url`` is an http(s) URL on one of the crawl's hosts."""
        return any(same_site(url, root) for root in self.roots)

    def in_scope(self, url: str) -> bool:
        """Whether ``url`` is a page of the crawl: on its hosts and, on the start URL's host, under the
        start URL's folder (see :class:`CrawlLimits`)."""
        if not self.on_site(url):
            return False
        if self.prefix == "/" or url == self.start or not same_site(url, self.start):
            return True
        path = urlsplit(url).path or "/"
        return path.startswith(self.prefix) or path == self.prefix.rstrip("/")

    def excluded(self, url: str) -> bool:
        """Whether the patterns rule ``url`` out (never the start URL)."""
        if url == self.start or not (self.include or self.exclude):
            return False
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if self.include and not any(fnmatchcase(target, pattern) for pattern in self.include):
            return True
        return any(fnmatchcase(target, pattern) for pattern in self.exclude)


class Robots:
    """robots.txt rules of one site: 4xx means allow all, 5xx or unreachable means disallow all.

    An unreachable host raises :class:`SiteUnreachable` when ``required`` (the crawl's own site);
    otherwise (an extra host) all its URLs are disallowed.
    """

    def __init__(
        self,
        root: str,
        user_agent: str,
        *,
        required: bool = True,
        fetch_slot: Callable[[str], ContextManager] = lambda url: nullcontext(),
    ):
        self.user_agent = user_agent
        parts = urlsplit(root)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        self.allow_all = self.disallow_all = False
        self.parser: Protego | None = None
        try:
            with fetch_slot(robots_url):
                response = outbound.fetch(robots_url, max_bytes=ROBOTS_MAX_BYTES)
        except outbound.ResponseTooLarge:
            self.allow_all = True
            return
        except httpx.TransportError as exc:
            if required:
                raise SiteUnreachable(f"{robots_url}: {type(exc).__name__}") from exc
            logger.info("robots.txt of %s unreachable (%s): disallowing", root, exc)
            self.disallow_all = True
            return
        except (httpx.HTTPError, outbound.OutboundRefused) as exc:
            logger.info("robots.txt of %s unusable (%s): disallowing", root, exc)
            self.disallow_all = True
            return
        if response.status_code >= 500:
            self.disallow_all = True
        elif response.status_code >= 400:
            self.allow_all = True
        else:
            self.parser = Protego.parse(response.text)

    def allowed(self, url: str) -> bool:
        if self.allow_all:
            return True
        if self.disallow_all or self.parser is None:
            return False
        return self.parser.can_fetch(url, self.user_agent)

    @property
    def crawl_delay(self) -> float:
        return float(self.parser.crawl_delay(self.user_agent) or 0) if self.parser else 0.0

    @property
    def sitemaps(self) -> list[str]:
        """The ``Sitemap:`` URLs robots.txt lists."""
        return list(self.parser.sitemaps) if self.parser else []


class LazyRenderer:
    """Starts Chromium at the first page to render; a failed start is reported for every page."""

    def __init__(self, user_agent: str):
        self.user_agent = user_agent
        self._renderer: PageRenderer | None = None
        self._unavailable: RenderingUnavailable | None = None

    def render(self, url: str, html: str) -> str:
        if self._unavailable is not None:
            raise self._unavailable
        if self._renderer is None:
            try:
                self._renderer = PageRenderer(user_agent=self.user_agent).__enter__()
            except RenderingUnavailable as exc:
                self._unavailable = exc
                raise
        return self._renderer.render(url, html)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.__exit__(None, None, None)


def content_digest(page: Page) -> str:
    """sha256 of a page's extracted sections: equal for pages that would index the same text."""
    payload = json.dumps([section.as_dict() for section in page.sections], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def crawl(
    start_url: str,
    limits: CrawlLimits,
    *,
    user_agent: str,
    should_stop: Callable[[], bool] = lambda: False,
    validators: Mapping[str, tuple[str, str]] | None = None,
    seeds: Iterable[str] = (),
) -> Iterator[CrawlEvent]:
    """Fetch the site breadth-first from ``start_url`` and yield an event per URL tried.

    The frontier starts with the start URL (depth 0), then, at depth 1, the page URLs of the
    site's sitemaps and the ``seeds``; links are followed from all of them, within the depth and
    page caps. ``validators`` maps normalized URLs to the ``(etag, last_modified)`` of their last
    fetch: they are sent as ``If-None-Match`` / ``If-Modified-Since``, and a 304 answer yields an
    ``unchanged`` event (no body, so that page's links stay unknown: the task passes the URLs of
    the pages it already stored as ``seeds``, so that pages behind an unchanged one are still
    visited).
    """
    outbound.check_url(start_url)
    start = normalize_url(start_url)
    scope = Scope(start, limits)
    gate = HostGate()
    validators = validators or {}

    def host_slot(url: str, delay: float = 0.0):
        return gate.slot(urlsplit(url).netloc, delay)

    robots = {urlsplit(start).netloc: Robots(start, user_agent, fetch_slot=host_slot)}

    def rules_for(url: str) -> Robots:
        host = urlsplit(url).netloc
        if host not in robots:
            robots[host] = Robots(url, user_agent, required=False, fetch_slot=host_slot)
        return robots[host]

    def polite_slot(url: str):
        return host_slot(url, max(limits.delay, min(rules_for(url).crawl_delay, 10.0)))

    frontier: deque[tuple[str, int]] = deque([(start, 0)])
    seen = {start}

    def discover(url: str, depth: int) -> None:
        if url not in seen and scope.in_scope(url):
            seen.add(url)
            frontier.append((url, depth))

    if limits.max_depth >= 1:
        listed = sitemap_urls(
            [limits.sitemap_url]
            if limits.sitemap_url
            else sitemap_locations(start, robots[urlsplit(start).netloc].sitemaps),
            may_fetch=lambda url: scope.on_site(url) and rules_for(url).allowed(url),
            accept=scope.in_scope,
            normalize=normalize_url,
            fetch_slot=polite_slot,
        )
        for url in [*listed, *(normalize_url(seed) for seed in seeds)]:
            discover(url, 1)

    renderer = LazyRenderer(user_agent) if limits.render_javascript else None
    try:
        fetched = excluded = 0
        digests: dict[str, str] = {}  # content digest → the first URL that had it
        while frontier and fetched < limits.max_pages and not should_stop():
            url, depth = frontier.popleft()
            if scope.excluded(url):
                excluded += 1
                if excluded <= EXCLUDED_REPORT_LIMIT:
                    yield CrawlEvent("skipped", url, depth, reason="excluded by pattern", found=len(seen))
                continue
            if not rules_for(url).allowed(url):
                yield CrawlEvent("skipped", url, depth, reason="disallowed by robots.txt", found=len(seen))
                continue
            fetched += 1
            headers = {"Accept": "text/html,application/xhtml+xml"}
            etag, last_modified = validators.get(url, ("", ""))
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            try:
                with polite_slot(url):
                    response = outbound.fetch(url, headers=headers)
            except outbound.OutboundRefused as exc:
                yield CrawlEvent("failed", url, depth, reason=f"refused: {exc.reason}", found=len(seen))
                continue
            except outbound.ResponseTooLarge:
                yield CrawlEvent("failed", url, depth, reason="page larger than the size limit", found=len(seen))
                continue
            except outbound.ResponseRefused as exc:
                yield CrawlEvent("failed", url, depth, reason=f"response refused: {exc}", found=len(seen))
                continue
            except outbound.DeadlineExceeded:
                yield CrawlEvent("failed", url, depth, reason="page took too long to arrive", found=len(seen))
                continue
            except httpx.HTTPError as exc:
                yield CrawlEvent("failed", url, depth, reason=f"network error: {type(exc).__name__}", found=len(seen))
                continue
            if response.status_code == 304 and (etag or last_modified):
                yield CrawlEvent("unchanged", url, depth, found=len(seen))
                continue
            if response.status_code != 200:
                yield CrawlEvent("failed", url, depth, reason=f"HTTP {response.status_code}", found=len(seen))
                continue
            final_url = normalize_url(response.url)
            if final_url != url:
                if not scope.in_scope(final_url):
                    reason = "redirects off the site" if not scope.on_site(final_url) else "redirects out of the folder"
                    yield CrawlEvent("skipped", url, depth, reason=f"{reason} ({final_url})", found=len(seen))
                    continue
                if final_url in seen:  # /a → /a/, both linked: the page is (or will be) fetched as /a/
                    yield CrawlEvent("skipped", url, depth, reason=f"redirects to {final_url}", found=len(seen))
                    continue
                seen.add(final_url)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in HTML_TYPES:
                yield CrawlEvent(
                    "skipped", url, depth, reason=f"not a web page ({content_type or 'no type'})", found=len(seen)
                )
                continue
            html = response.text
            if limits.render_javascript:
                try:
                    html = renderer.render(final_url, html)
                except RenderingUnavailable as exc:
                    yield CrawlEvent("failed", url, depth, reason=str(exc), found=len(seen))
                    continue
                except Exception as exc:  # a page that crashes or hangs the browser fails alone
                    reason = f"JavaScript rendering failed: {type(exc).__name__}"
                    yield CrawlEvent("failed", url, depth, reason=reason, found=len(seen))
                    continue
            page = extract_page(html, final_url)
            if depth < limits.max_depth and not page.nofollow:
                for link in page.links:
                    discover(normalize_url(link), depth + 1)
            if page.noindex:
                yield CrawlEvent("skipped", final_url, depth, reason="noindex", found=len(seen))
                continue
            canonical = normalize_url(page.canonical) if page.canonical else final_url
            if canonical != final_url and scope.in_scope(canonical):
                if canonical in seen and canonical != url:
                    yield CrawlEvent("skipped", final_url, depth, reason=f"duplicate of {canonical}", found=len(seen))
                    continue
                seen.add(canonical)
                final_url = canonical
            if not page.sections:
                yield CrawlEvent("skipped", final_url, depth, reason="no main text found", found=len(seen))
                continue
            if page.text_length < MIN_TEXT_CHARS:
                yield CrawlEvent(
                    "skipped", final_url, depth, reason=f"thin page ({page.text_length} characters)", found=len(seen)
                )
                continue
            digest = content_digest(page)
            if digest in digests:
                yield CrawlEvent("skipped", final_url, depth, reason=f"duplicate of {digests[digest]}", found=len(seen))
                continue
            digests[digest] = final_url
            yield CrawlEvent(
                "page",
                final_url,
                depth,
                page=page,
                found=len(seen),
                etag=response.headers.get("etag", ""),
                last_modified=response.headers.get("last-modified", ""),
            )
    finally:
        if renderer is not None:
            renderer.close()
    if frontier and fetched >= limits.max_pages:  # found, never tried: counted, so that the numbers add up
        yield CrawlEvent(
            "skipped",
            start,
            0,
            reason=f"{len(frontier)} more URLs not fetched: the page cap ({limits.max_pages}) was reached",
            found=len(seen),
            count=len(frontier),
        )
    if excluded > EXCLUDED_REPORT_LIMIT:
        more = excluded - EXCLUDED_REPORT_LIMIT
        yield CrawlEvent(
            "skipped", start, 0, reason=f"{more} more URLs excluded by pattern", found=len(seen), count=more
        )
