"""Breadth-first crawling of one website, politely and within its bounds.

The crawler knows nothing of the database: it yields what happened to each URL, and the task
that drives it records pages and progress through the services. Every request goes through the
one SSRF-safe client (``chatsite.lib.http``).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from protego import Protego

from chatsite.lib import http as outbound
from ingestion.extraction import Page, extract_page

logger = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 500 * 1024  # Google reads the first 500 KiB of a robots.txt
TRACKING_PARAMS = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid"}
SESSION_PARAMS = {"sid", "sessionid", "session_id", "phpsessid", "jsessionid"}
HTML_TYPES = ("text/html", "application/xhtml+xml")


class SiteUnreachable(Exception):
    """The site did not answer at all (not even with an error page): try the crawl again later."""


@dataclass
class CrawlLimits:
    max_pages: int = 500
    max_depth: int = 5
    delay: float = 0.0  # seconds between requests to the site


@dataclass
class CrawlEvent:
    """What happened to one URL: ``kind`` is page, failed or skipped."""

    kind: str
    url: str
    depth: int
    page: Page | None = None
    reason: str = ""
    found: int = 0  # URLs discovered so far, for progress


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


class Robots:
    """robots.txt rules of one site: 4xx means allow all, 5xx or unreachable means disallow all."""

    def __init__(self, root: str, user_agent: str):
        self.user_agent = user_agent
        parts = urlsplit(root)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        self.allow_all = self.disallow_all = False
        self.parser: Protego | None = None
        try:
            response = outbound.fetch(robots_url, max_bytes=ROBOTS_MAX_BYTES)
        except outbound.ResponseTooLarge:
            self.allow_all = True
            return
        except httpx.TransportError as exc:
            raise SiteUnreachable(f"{robots_url}: {type(exc).__name__}") from exc
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


def crawl(
    start_url: str,
    limits: CrawlLimits,
    *,
    user_agent: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[CrawlEvent]:
    """Fetch the site breadth-first from ``start_url`` and yield an event per URL tried."""
    outbound.check_url(start_url)
    robots = Robots(start_url, user_agent)
    delay = max(limits.delay, min(robots.crawl_delay, 10.0))
    start = normalize_url(start_url)
    frontier: deque[tuple[str, int]] = deque([(start, 0)])
    seen = {start}
    fetched = 0
    while frontier and fetched < limits.max_pages and not should_stop():
        url, depth = frontier.popleft()
        if not robots.allowed(url):
            yield CrawlEvent("skipped", url, depth, reason="disallowed by robots.txt", found=len(seen))
            continue
        if fetched and delay:
            time.sleep(delay)
        fetched += 1
        try:
            response = outbound.fetch(url, headers={"Accept": "text/html,application/xhtml+xml"})
        except outbound.OutboundRefused as exc:
            yield CrawlEvent("failed", url, depth, reason=f"refused: {exc.reason}", found=len(seen))
            continue
        except outbound.ResponseTooLarge:
            yield CrawlEvent("failed", url, depth, reason="page larger than the size limit", found=len(seen))
            continue
        except httpx.HTTPError as exc:
            yield CrawlEvent("failed", url, depth, reason=f"network error: {type(exc).__name__}", found=len(seen))
            continue
        if response.status_code != 200:
            yield CrawlEvent("failed", url, depth, reason=f"HTTP {response.status_code}", found=len(seen))
            continue
        final_url = normalize_url(response.url)
        if final_url != url and not same_site(final_url, start):
            yield CrawlEvent("skipped", url, depth, reason="redirects off the site", found=len(seen))
            continue
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in HTML_TYPES:
            yield CrawlEvent("skipped", url, depth, reason=f"not a web page ({content_type or 'no type'})", found=len(seen))
            continue
        page = extract_page(response.text, final_url)
        if depth < limits.max_depth and not page.nofollow:
            for link in page.links:
                link = normalize_url(link)
                if link not in seen and same_site(link, start):
                    seen.add(link)
                    frontier.append((link, depth + 1))
        if page.noindex:
            yield CrawlEvent("skipped", final_url, depth, reason="noindex", found=len(seen))
            continue
        canonical = normalize_url(page.canonical) if page.canonical else final_url
        if canonical != final_url and same_site(canonical, start):
            if canonical in seen and canonical != url:
                yield CrawlEvent("skipped", final_url, depth, reason=f"duplicate of {canonical}", found=len(seen))
                continue
            seen.add(canonical)
            final_url = canonical
        yield CrawlEvent("page", final_url, depth, page=page, found=len(seen))
