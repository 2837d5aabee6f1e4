"""Page URLs from a site's sitemaps (https://www.sitemaps.org/protocol.html), within bounds.

Where the sitemaps are: the ``Sitemap:`` lines of robots.txt, else ``/sitemap.xml``. A sitemap is
either a ``<urlset>`` of page URLs or a ``<sitemapindex>`` of further sitemaps; both may be
gzip-compressed (``.xml.gz``). Everything about them is bounded, because they come from the site:

* nesting: indexes are followed ``MAX_NESTING`` levels deep, and at most ``MAX_SITEMAPS`` files
  are fetched; a sitemap is fetched once however often it is listed (loops end there);
* size: the body is fetched with the client's byte cap, and a compressed body is decompressed to
  at most ``MAX_DECOMPRESSED_BYTES`` (a gzip bomb is refused without being inflated whole);
* URLs: at most ``MAX_URLS`` page URLs, only http(s) ones that the caller accepts;
* XML: parsed without entities, DTDs, network access or huge-tree mode.

Every request goes through the SSRF-safe client; sitemaps that cannot be fetched or parsed are
logged and passed over, since a crawl works without them.
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from urllib.parse import urljoin, urlsplit

import httpx
import lxml.etree

from chatsite.lib import http as outbound

logger = logging.getLogger(__name__)

MAX_NESTING = 3  # an index may list indexes, three levels below the sitemaps robots.txt lists
MAX_SITEMAPS = 100  # sitemap files fetched per crawl
MAX_URLS = 50_000  # page URLs taken from all sitemaps together (one sitemap's limit in the protocol)
MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024  # the protocol's limit for an uncompressed sitemap
INFLATE_PIECE_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(Exception):
    """A sitemap that cannot be used; the message says why."""


def sitemap_locations(root: str, listed: Iterable[str]) -> list[str]:
    """The sitemaps to read: those robots.txt lists (resolved against the root), else ``/sitemap.xml``."""
    locations = [urljoin(root, url.strip()) for url in listed if url.strip()]
    return locations or [urljoin(root, "/sitemap.xml")]


def sitemap_urls(
    locations: list[str],
    *,
    may_fetch: Callable[[str], bool],
    accept: Callable[[str], bool],
    normalize: Callable[[str], str] = lambda url: url,
    fetch_slot: Callable[[str], ContextManager] = lambda url: nullcontext(),
    max_urls: int = MAX_URLS,
) -> list[str]:
    """Page URLs listed by the sitemaps at ``locations`` and their nested indexes, in order, once each.

    ``may_fetch`` says whether a sitemap may be requested (scope and robots.txt), ``accept``
    whether a listed page URL is wanted (out-of-scope ones are dropped silently), ``normalize``
    spells URLs one way (for the visited set and the result), and each request is made inside
    ``fetch_slot(url)`` (the crawler's per-host slot and delay).
    """
    queue: deque[tuple[str, int]] = deque((normalize(url), 0) for url in locations)
    visited: set[str] = set()
    pages: dict[str, None] = {}  # ordered set
    while queue and len(visited) < MAX_SITEMAPS and len(pages) < max_urls:
        location, nesting = queue.popleft()
        if location in visited or urlsplit(location).scheme not in {"http", "https"} or not may_fetch(location):
            continue
        visited.add(location)
        try:
            with fetch_slot(location):
                data = fetch_sitemap(location)
            kind, listed = parse_sitemap(data)
        except SitemapError as exc:
            logger.info("sitemap %s unusable: %s", location, exc)
            continue
        for url in listed:
            url = normalize(urljoin(location, url))
            if urlsplit(url).scheme not in {"http", "https"}:
                continue
            if kind == "sitemapindex":
                if nesting < MAX_NESTING and url not in visited:
                    queue.append((url, nesting + 1))
            elif url not in pages and accept(url):
                pages[url] = None
                if len(pages) >= max_urls:
                    break
    return list(pages)


def fetch_sitemap(url: str) -> bytes:
    """The XML of one sitemap, decompressed when it is gzip (whatever its name says)."""
    try:
        response = outbound.fetch(url, headers={"Accept": "application/xml,text/xml,application/gzip,*/*;q=0.5"})
    except outbound.OutboundRefused as exc:
        raise SitemapError(f"refused: {exc.reason}") from None
    except outbound.ResponseTooLarge:
        raise SitemapError("larger than the size limit") from None
    except outbound.ResponseRefused as exc:
        raise SitemapError(f"response refused: {exc}") from None
    except httpx.HTTPError as exc:
        raise SitemapError(f"network error: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SitemapError(f"HTTP {response.status_code}")
    if response.content.startswith(GZIP_MAGIC):
        return gunzip_capped(response.content, MAX_DECOMPRESSED_BYTES)
    return response.content


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data`` piece by piece, refusing it as soon as it grows past ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pieces, size, pending = [], 0, data
    try:
        while True:
            piece = inflater.decompress(pending, INFLATE_PIECE_BYTES)
            size += len(piece)
            if size > limit:
                raise SitemapError(f"larger than {limit} bytes after decompression")
            pieces.append(piece)
            pending = inflater.unconsumed_tail
            if inflater.eof or not (pending or piece):
                return b"".join(pieces)
    except zlib.error as exc:
        raise SitemapError(f"invalid gzip data: {exc}") from None


def parse_sitemap(content: bytes) -> tuple[str, list[str]]:
    """``("urlset" | "sitemapindex", [loc, ...])`` of a sitemap document, namespaces ignored."""
    parser = lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
    )
    try:
        root = lxml.etree.fromstring(content, parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise SitemapError(f"not XML: {exc}") from None
    kind = lxml.etree.QName(root).localname
    entry = {"urlset": "url", "sitemapindex": "sitemap"}.get(kind)
    if entry is None:
        raise SitemapError(f"unknown root element <{kind}>")
    locations = []
    for element in root:
        if isinstance(element.tag, str) and lxml.etree.QName(element).localname == entry:
            for child in element:
                if isinstance(child.tag, str) and lxml.etree.QName(child).localname == "loc" and child.text:
                    locations.append(child.text.strip())
    return kind, locations
