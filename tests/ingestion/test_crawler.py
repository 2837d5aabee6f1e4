"""The crawler against small sites served on loopback: bounds, robots.txt, duplicates, traps."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingestion.crawler import CrawlLimits, SiteUnreachable, crawl, normalize_url

BODY = "<p>" + "This page explains one topic of the product in enough words to count as content. " * 8 + "</p>"


def html(title: str, links: list[str] = (), head: str = "") -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return f"<html><head><title>{title}</title>{head}</head><body><main><h1>{title}</h1>{BODY}<nav>{anchors}</nav></main></body></html>"


class Site:
    """A website of path → (status, content type, body) on 127.0.0.1, recording requests."""

    def __init__(self, pages: dict[str, tuple[int, str, str]]):
        self.pages = pages
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                status, content_type, body = site.pages.get(self.path, (404, "text/html", "not found"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def crawl(self, start="/", **limits):
        return list(crawl(self.url + start, CrawlLimits(**limits), user_agent="ChatsiteBot/0.1"))


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


def page(title, links=(), head=""):
    return (200, "text/html; charset=utf-8", html(title, links, head))


def kinds(events):
    return {normalize_url(e.url).split("/", 3)[-1]: (e.kind, e.reason) for e in events}


def test_it_crawls_breadth_first_within_the_depth_cap(make_site):
    site = make_site({
        "/": page("Home", ["/a/", "/b/"]),
        "/a/": page("A", ["/a/deep/"]),
        "/b/": page("B", ["/", "/a/"]),
        "/a/deep/": page("Deep", ["/a/deep/deeper/"]),
        "/a/deep/deeper/": page("Deeper"),
    })
    events = site.crawl(max_depth=2, max_pages=50)
    assert [e.url.split("/", 3)[-1] for e in events if e.kind == "page"] == ["", "a/", "b/", "a/deep/"]
    assert "/a/deep/deeper/" not in site.requests


def test_the_page_cap_stops_the_crawl(make_site):
    site = make_site({"/": page("Home", [f"/p{i}/" for i in range(30)]), **{f"/p{i}/": page(f"P{i}") for i in range(30)}})
    events = site.crawl(max_pages=5, max_depth=3)
    assert len([e for e in events if e.kind == "page"]) == 5
    assert len([r for r in site.requests if r != "/robots.txt"]) == 5


def test_robots_txt_is_obeyed(make_site):
    site = make_site({
        "/robots.txt": (200, "text/plain", "User-agent: *\nDisallow: /private/\n"),
        "/": page("Home", ["/private/secret/", "/public/"]),
        "/public/": page("Public"),
        "/private/secret/": page("Secret"),
    })
    result = kinds(site.crawl())
    assert result["private/secret/"] == ("skipped", "disallowed by robots.txt")
    assert result["public/"][0] == "page"
    assert "/private/secret/" not in site.requests


def test_a_robots_txt_server_error_disallows_everything(make_site):
    site = make_site({"/robots.txt": (503, "text/plain", "down"), "/": page("Home")})
    events = site.crawl()
    assert [(e.kind, e.reason) for e in events] == [("skipped", "disallowed by robots.txt")]
    assert site.requests == ["/robots.txt"]


def test_noindex_pages_are_skipped_but_their_links_followed(make_site):
    site = make_site({
        "/": page("Home", ["/hidden/"]),
        "/hidden/": page("Hidden", ["/found/"], head='<meta name="robots" content="noindex">'),
        "/found/": page("Found"),
    })
    result = kinds(site.crawl())
    assert result["hidden/"] == ("skipped", "noindex")
    assert result["found/"][0] == "page"


def test_duplicates_by_canonical_and_tracking_parameters_are_fetched_once(make_site):
    site = make_site({
        "/": page("Home", ["/doc/?utm_source=x", "/doc/", "/doc/#part", "/doc/index.html", "/copy/"]),
        "/doc/": page("Doc"),
        "/copy/": page("Copy", head='<link rel="canonical" href="/doc/">'),
    })
    events = site.crawl()
    pages = [e.url for e in events if e.kind == "page"]
    assert pages == [site.url + "/", site.url + "/doc/"]
    assert site.requests.count("/doc/") == 1
    assert kinds(events)["copy/"][0] == "skipped"


def test_a_session_id_calendar_trap_is_bounded(make_site):
    calendar = {f"/cal/{i}/": page(f"Day {i}", [f"/cal/{i + 1}/?sid={i}"]) for i in range(100)}
    site = make_site({"/": page("Home", ["/cal/0/"]), **calendar})
    events = site.crawl(max_pages=500, max_depth=10)
    assert len(events) <= 12  # depth 10 ends the chain; session ids do not multiply it
    assert all("sid=" not in e.url for e in events)


def test_failures_and_non_html_are_reported_with_reasons(make_site):
    site = make_site({
        "/": page("Home", ["/missing/", "/file.pdf", "/boom/", "https://elsewhere.example/"]),
        "/file.pdf": (200, "application/pdf", "%PDF-1.4"),
        "/boom/": (500, "text/html", "error"),
    })
    result = kinds(site.crawl())
    assert result["missing/"] == ("failed", "HTTP 404")
    assert result["boom/"] == ("failed", "HTTP 500")
    assert result["file.pdf"] == ("skipped", "not a web page (application/pdf)")
    assert not any("elsewhere" in url for url in result)


def test_an_unreachable_site_is_reported_for_a_retry(settings):
    with pytest.raises(SiteUnreachable):
        list(crawl("http://127.0.0.1:9/", CrawlLimits(), user_agent="x"))


def test_private_addresses_are_refused_by_default(settings, make_site):
    site = make_site({"/": page("Home")})
    settings.OUTBOUND_ALLOW_PRIVATE = False
    from chatsite.lib.http import OutboundRefused

    with pytest.raises(OutboundRefused):
        site.crawl()
    assert site.requests == []


@pytest.mark.parametrize("url, normal", [
    ("HTTP://Example.COM:80/a/index.html?utm_source=x&b=2&a=1#frag", "http://example.com/a/?a=1&b=2"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:8443/x?PHPSESSID=abc", "https://example.com:8443/x"),
])
def test_urls_are_normalised(url, normal):
    assert normalize_url(url) == normal
