"""Sitemap discovery against small sites served on loopback: robots.txt, indexes, gzip, bounds."""

import gzip
import tracemalloc
import zlib

import pytest

from ingestion.crawling.crawler import normalize_url
from ingestion.crawling.sitemaps import (
    MAX_DECOMPRESSED_BYTES,
    MAX_NESTING,
    SitemapError,
    parse_sitemap,
    sitemap_urls,
)
from tests.ingestion.crawling.test_crawler import Site, kinds, page

XML = '<?xml version="1.0" encoding="UTF-8"?>'
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def make_site():
    sites = []

    def factory(pages):
        sites.append(Site(pages))
        return sites[-1]

    yield factory
    for site in sites:
        site.server.shutdown()


def urlset(*urls: str) -> tuple[int, str, str]:
    entries = "".join(f"<url><loc>{url}</loc><lastmod>2026-08-18</lastmod></url>" for url in urls)
    return 200, "application/xml", f"{XML}<urlset {NS}>{entries}</urlset>"


def index(*urls: str) -> tuple[int, str, str]:
    entries = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return 200, "application/xml", f"{XML}<sitemapindex {NS}>{entries}</sitemapindex>"


def crawled(events) -> list[str]:
    return [e.url.split("/", 3)[-1] for e in events if e.kind == "page"]


def test_a_sitemap_listed_in_robots_txt_seeds_the_crawl(make_site):
    site = make_site({"/": page("Home"), "/hidden/": page("Hidden")})
    site.pages["/robots.txt"] = (200, "text/plain", f"User-agent: *\nAllow: /\nSitemap: {site.url}/maps/pages.xml\n")
    site.pages["/maps/pages.xml"] = urlset(f"{site.url}/hidden/")
    assert crawled(site.crawl()) == ["", "hidden/"]  # the start URL first, then the sitemap's pages
    assert "/sitemap.xml" not in site.requests


def test_without_robots_txt_sitemaps_the_plain_sitemap_xml_is_read(make_site):
    site = make_site(
        {
            "/": page("Home", ["/linked/"]),
            "/linked/": page("Linked", ["/deeper/"]),
            "/only-in-sitemap/": page("Only in the sitemap", ["/behind/"]),
            "/behind/": page("Behind"),
            "/deeper/": page("Deeper"),
        }
    )
    site.pages["/sitemap.xml"] = urlset(f"{site.url}/only-in-sitemap/", f"{site.url}/linked/")
    # sitemap pages are at depth 1 and links are followed from them, within the depth cap
    assert crawled(site.crawl(max_depth=2)) == ["", "only-in-sitemap/", "linked/", "behind/", "deeper/"]
    assert crawled(site.crawl(max_depth=1)) == ["", "only-in-sitemap/", "linked/"]
    site.requests.clear()
    assert crawled(site.crawl(max_depth=0)) == [""]
    assert "/sitemap.xml" not in site.requests


def test_a_sitemap_index_with_two_children(make_site):
    site = make_site({"/": page("Home"), "/a/": page("A"), "/b/": page("B")})
    site.pages["/sitemap.xml"] = index(f"{site.url}/one.xml", f"{site.url}/two.xml")
    site.pages["/one.xml"] = urlset(f"{site.url}/a/")
    site.pages["/two.xml"] = urlset(f"{site.url}/b/")
    assert crawled(site.crawl()) == ["", "a/", "b/"]


def test_a_gzip_sitemap(make_site):
    site = make_site({"/": page("Home"), "/zipped/": page("Zipped")})
    site.pages["/robots.txt"] = (200, "text/plain", f"Sitemap: {site.url}/sitemap.xml.gz\n")
    site.pages["/sitemap.xml.gz"] = (200, "application/gzip", gzip.compress(urlset(f"{site.url}/zipped/")[2].encode()))
    assert crawled(site.crawl()) == ["", "zipped/"]


def test_self_listing_and_looping_indexes_are_fetched_once(make_site):
    site = make_site({"/": page("Home"), "/a/": page("A")})
    site.pages["/sitemap.xml"] = index(f"{site.url}/sitemap.xml", f"{site.url}/loop-1.xml")
    site.pages["/loop-1.xml"] = index(f"{site.url}/loop-2.xml", f"{site.url}/sitemap.xml")
    site.pages["/loop-2.xml"] = index(f"{site.url}/loop-1.xml", f"{site.url}/pages.xml")
    site.pages["/pages.xml"] = urlset(f"{site.url}/a/", f"{site.url}/a/")
    assert crawled(site.crawl()) == ["", "a/"]
    for path in ("/sitemap.xml", "/loop-1.xml", "/loop-2.xml", "/pages.xml"):
        assert site.requests.count(path) == 1


def test_index_nesting_is_bounded(make_site):
    site = make_site({"/": page("Home"), "/a/": page("A")})
    site.pages["/sitemap.xml"] = index(f"{site.url}/level-1.xml")
    for level in range(1, MAX_NESTING + 2):
        site.pages[f"/level-{level}.xml"] = index(f"{site.url}/level-{level + 1}.xml")
    site.pages[f"/level-{MAX_NESTING + 2}.xml"] = urlset(f"{site.url}/a/")
    assert crawled(site.crawl()) == [""]
    assert f"/level-{MAX_NESTING}.xml" in site.requests
    assert f"/level-{MAX_NESTING + 1}.xml" not in site.requests


def test_a_gzip_bomb_is_refused_in_bounded_memory(make_site):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b"\0" * (1024 * 1024)
    bomb = b"".join(compressor.compress(megabyte) for _ in range(200)) + compressor.flush()  # 200 MB inflated
    assert len(bomb) < 1024 * 1024
    site = make_site({"/": page("Home"), "/sitemap.xml.gz": (200, "application/gzip", bomb)})
    tracemalloc.start()
    try:
        urls = sitemap_urls([f"{site.url}/sitemap.xml.gz"], may_fetch=lambda url: True, accept=lambda url: True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert urls == []
    assert peak < MAX_DECOMPRESSED_BYTES + 10 * 1024 * 1024
    assert site.requests.count("/sitemap.xml.gz") == 1


def test_out_of_scope_and_non_http_urls_are_ignored(make_site):
    other = make_site({"/page/": page("Other")})
    site = make_site({"/": page("Home"), "/in/": page("In")})
    site.pages["/sitemap.xml"] = urlset(
        "https://www.django-rest-framework.org/api-guide/throttling/",
        f"{other.url}/page/",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        f"{site.url}/in/",
    )
    events = site.crawl()
    assert crawled(events) == ["", "in/"]
    assert len(events) == 2 and other.requests == []


def test_patterns_apply_to_sitemap_urls(make_site):
    site = make_site({"/": page("Home"), "/docs/a/": page("A"), "/blog/b/": page("B")})
    site.pages["/sitemap.xml"] = urlset(f"{site.url}/docs/a/", f"{site.url}/blog/b/")
    result = kinds(site.crawl(exclude=("/blog/*",)))
    assert result["docs/a/"][0] == "page"
    assert result["blog/b/"] == ("skipped", "excluded by pattern")
    assert "/blog/b/" not in site.requests


def test_sitemaps_disallowed_by_robots_txt_are_not_fetched(make_site):
    site = make_site({"/": page("Home"), "/a/": page("A")})
    site.pages["/robots.txt"] = (200, "text/plain", "User-agent: *\nDisallow: /sitemap.xml\n")
    site.pages["/sitemap.xml"] = urlset(f"{site.url}/a/")
    assert crawled(site.crawl()) == [""]
    assert "/sitemap.xml" not in site.requests


def test_urls_are_normalized_and_deduplicated(make_site):
    site = make_site({})
    site.pages["/sitemap.xml"] = urlset(f"{site.url}/a/?utm_source=x", f"{site.url}/a/", f"{site.url}/a/index.html")
    urls = sitemap_urls(
        [f"{site.url}/sitemap.xml"], may_fetch=lambda url: True, accept=lambda url: True, normalize=normalize_url
    )
    assert urls == [f"{site.url}/a/"]


def test_entities_are_not_expanded():
    xxe = (
        f'{XML}<!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
        f"<urlset {NS}><url><loc>http://example.com/&secret;</loc></url></urlset>"
    )
    kind, locations = parse_sitemap(xxe.encode())
    assert kind == "urlset" and all("root:" not in loc for loc in locations)


@pytest.mark.parametrize("content", [b"", b"not xml", f"{XML}<html><body>hello</body></html>".encode()])
def test_what_is_not_a_sitemap_is_refused(content):
    with pytest.raises(SitemapError):
        parse_sitemap(content)
