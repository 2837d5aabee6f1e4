"""The crawler against small sites served on loopback: bounds, robots.txt, duplicates, traps,
scope patterns and extra hosts, conditional requests, thin pages."""

import hashlib
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from ingestion.crawling.crawler import (
    EXCLUDED_REPORT_LIMIT,
    CrawlLimits,
    SiteUnreachable,
    crawl,
    normalize_url,
)
from ingestion.models import Chunk, CrawlRun, Document, Source
from ingestion.spaces import space_active, vector_literal
from ingestion.tasks import source_crawl_task
from tests.factories import make_assistant
from tests.servers import start_serving

BODY = "<p>" + "This page explains one topic of the product in enough words to count as content. " * 8 + "</p>"


def html(title: str, links: list[str] = (), head: str = "") -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return f"<html><head><title>{title}</title>{head}</head><body><main><h1>{title}</h1>{BODY}<nav>{anchors}</nav></main></body></html>"


class Site:
    """A website of path → (status, content type, body) on 127.0.0.1, recording requests.

    Bodies are text or bytes; the body of a redirect is its Location. With ``validators``, every 200 answer carries an ETag and a
    Last-Modified header, and a request whose If-None-Match matches the ETag gets 304.
    """

    def __init__(self, pages: dict[str, tuple[int, str, str | bytes]], validators: bool = False):
        self.pages = pages
        self.validators = validators
        self.requests: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                site.request_headers.append(dict(self.headers))
                status, content_type, body = site.pages.get(self.path, (404, "text/html", "not found"))
                data = body if isinstance(body, bytes) else body.encode()
                etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                if site.validators and status == 200 and self.headers.get("If-None-Match") == etag:
                    status, data = 304, b""
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", data.decode())
                if site.validators and status in (200, 304):
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", "Tue, 01 Sep 2026 10:00:00 GMT")
                if status != 304:
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        start_serving(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = self.url.split("//", 1)[1]

    def crawl(self, start="/", *, validators=None, seeds=(), **limits):
        events = crawl(
            self.url + start, CrawlLimits(**limits), user_agent="ChatsiteBot/0.1", validators=validators, seeds=seeds
        )
        return list(events)


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def make_site():
    sites = []

    def factory(pages, **options):
        sites.append(Site(pages, **options))
        return sites[-1]

    yield factory
    for site in sites:
        site.server.shutdown()


def page(title, links=(), head=""):
    return (200, "text/html; charset=utf-8", html(title, links, head))


def kinds(events):
    return {normalize_url(e.url).split("/", 3)[-1]: (e.kind, e.reason) for e in events}


def test_it_crawls_breadth_first_within_the_depth_cap(make_site):
    site = make_site(
        {
            "/": page("Home", ["/a/", "/b/"]),
            "/a/": page("A", ["/a/deep/"]),
            "/b/": page("B", ["/", "/a/"]),
            "/a/deep/": page("Deep", ["/a/deep/deeper/"]),
            "/a/deep/deeper/": page("Deeper"),
        }
    )
    events = site.crawl(max_depth=2, max_pages=50)
    assert [e.url.split("/", 3)[-1] for e in events if e.kind == "page"] == ["", "a/", "b/", "a/deep/"]
    assert "/a/deep/deeper/" not in site.requests


def test_the_page_cap_stops_the_crawl(make_site):
    site = make_site(
        {"/": page("Home", [f"/p{i}/" for i in range(30)]), **{f"/p{i}/": page(f"P{i}") for i in range(30)}}
    )
    events = site.crawl(max_pages=5, max_depth=3)
    assert len([e for e in events if e.kind == "page"]) == 5
    assert len([r for r in site.requests if r not in ("/robots.txt", "/sitemap.xml")]) == 5


def test_robots_txt_is_obeyed(make_site):
    site = make_site(
        {
            "/robots.txt": (200, "text/plain", "User-agent: *\nDisallow: /private/\n"),
            "/": page("Home", ["/private/secret/", "/public/"]),
            "/public/": page("Public"),
            "/private/secret/": page("Secret"),
        }
    )
    result = kinds(site.crawl())
    assert result["private/secret/"] == ("skipped", "disallowed by robots.txt")
    assert result["public/"][0] == "page"
    assert "/private/secret/" not in site.requests


def test_a_robots_txt_server_error_disallows_everything(make_site):
    site = make_site({"/robots.txt": (503, "text/plain", "down"), "/": page("Home")})
    events = site.crawl()
    assert [(e.kind, e.reason) for e in events] == [("skipped", "disallowed by robots.txt")]
    assert site.requests == ["/robots.txt"]  # not even the sitemap


def test_noindex_pages_are_skipped_but_their_links_followed(make_site):
    site = make_site(
        {
            "/": page("Home", ["/hidden/"]),
            "/hidden/": page("Hidden", ["/found/"], head='<meta name="robots" content="noindex">'),
            "/found/": page("Found"),
        }
    )
    result = kinds(site.crawl())
    assert result["hidden/"] == ("skipped", "noindex")
    assert result["found/"][0] == "page"


def test_duplicates_by_canonical_and_tracking_parameters_are_fetched_once(make_site):
    site = make_site(
        {
            "/": page("Home", ["/doc/?utm_source=x", "/doc/", "/doc/#part", "/doc/index.html", "/copy/"]),
            "/doc/": page("Doc"),
            "/copy/": page("Copy", head='<link rel="canonical" href="/doc/">'),
        }
    )
    events = site.crawl()
    pages = [e.url for e in events if e.kind == "page"]
    assert pages == [site.url + "/", site.url + "/doc/"]
    assert site.requests.count("/doc/") == 1
    assert kinds(events)["copy/"][0] == "skipped"


def test_a_redirect_to_a_known_url_is_not_indexed_twice(make_site):
    site = make_site(
        {
            "/": page("Home", ["/doc", "/doc/", "/old/"]),
            "/doc": (301, "text/html", "/doc/"),
            "/doc/": page("Doc"),
            "/old/": (301, "text/html", "/new/"),
            "/new/": page("New"),
        }
    )
    events = site.crawl()
    assert [e.url for e in events if e.kind == "page"] == [site.url + "/", site.url + "/doc/", site.url + "/new/"]
    assert kinds(events)["doc"] == ("skipped", f"redirects to {site.url}/doc/")


def test_a_session_id_calendar_trap_is_bounded(make_site):
    calendar = {f"/cal/{i}/": page(f"Day {i}", [f"/cal/{i + 1}/?sid={i}"]) for i in range(100)}
    site = make_site({"/": page("Home", ["/cal/0/"]), **calendar})
    events = site.crawl(max_pages=500, max_depth=10)
    assert len(events) <= 12  # depth 10 ends the chain; session ids do not multiply it
    assert all("sid=" not in e.url for e in events)


def test_failures_and_non_html_are_reported_with_reasons(make_site):
    site = make_site(
        {
            "/": page("Home", ["/missing/", "/file.pdf", "/boom/", "https://elsewhere.example/"]),
            "/file.pdf": (200, "application/pdf", "%PDF-1.4"),
            "/boom/": (500, "text/html", "error"),
        }
    )
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


@pytest.mark.parametrize(
    "url, normal",
    [
        ("HTTP://Example.COM:80/a/index.html?utm_source=x&b=2&a=1#frag", "http://example.com/a/?a=1&b=2"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:8443/x?PHPSESSID=abc", "https://example.com:8443/x"),
    ],
)
def test_urls_are_normalised(url, normal):
    assert normalize_url(url) == normal


def test_requests_to_one_host_keep_the_minimum_delay(make_site):
    site = make_site({"/": page("Home", ["/a/", "/b/"]), "/a/": page("A"), "/b/": page("B")})
    started = time.monotonic()
    events = site.crawl(delay=0.2)
    assert [e.kind for e in events] == ["page"] * 3
    assert time.monotonic() - started >= 0.6  # the sitemap, then three pages, 0.2 s apart


def test_include_and_exclude_patterns_limit_the_crawl(make_site):
    site = make_site(
        {
            "/": page("Home", ["/docs/a/", "/docs/b/?print=1", "/blog/post/", "/docs/private/x/"]),
            "/docs/a/": page("A", ["/docs/c/"]),
            "/docs/b/?print=1": page("B print"),
            "/docs/c/": page("C"),
            "/blog/post/": page("Post"),
            "/docs/private/x/": page("X"),
        }
    )
    result = kinds(site.crawl(include=("/docs/*",), exclude=("/docs/private/*", "*print=*")))
    assert result[""][0] == "page"  # the start URL is always allowed
    assert result["docs/a/"][0] == result["docs/c/"][0] == "page"
    for excluded in ("blog/post/", "docs/b/?print=1", "docs/private/x/"):
        assert result[excluded] == ("skipped", "excluded by pattern")
    assert set(site.requests) == {"/robots.txt", "/sitemap.xml", "/", "/docs/a/", "/docs/c/"}


def test_excluded_urls_are_counted_but_reported_in_bounded_numbers(make_site):
    links = [f"/tag/{i}/" for i in range(EXCLUDED_REPORT_LIMIT + 15)]
    site = make_site({"/": page("Home", links)})
    events = site.crawl(exclude=("/tag/*",))
    skipped = [e for e in events if e.kind == "skipped"]
    assert len(skipped) == EXCLUDED_REPORT_LIMIT + 1
    assert skipped[-1].reason == "15 more URLs excluded by pattern" and skipped[-1].count == 15
    assert sum(e.count for e in skipped) == len(links)
    assert not any(r.startswith("/tag/") for r in site.requests)


def test_extra_hosts_are_part_of_the_site(make_site):
    other = make_site({"/guide/": page("Guide", ["/guide/more/"]), "/guide/more/": page("More")})
    third = make_site({"/elsewhere/": page("Elsewhere")})
    site = make_site({"/": page("Home", [other.url + "/guide/", third.url + "/elsewhere/"])})
    pages = [e.url for e in site.crawl(extra_hosts=(other.host,)) if e.kind == "page"]
    assert pages == [site.url + "/", other.url + "/guide/", other.url + "/guide/more/"]
    assert "/robots.txt" in other.requests  # its own robots.txt is read
    assert third.requests == []  # the same host name on another port is another host


def test_without_extra_hosts_another_port_is_out_of_scope(make_site):
    other = make_site({"/guide/": page("Guide")})
    site = make_site({"/": page("Home", [other.url + "/guide/"])})
    assert [e.url for e in site.crawl() if e.kind == "page"] == [site.url + "/"]
    assert other.requests == []


def test_conditional_requests_find_pages_unchanged(make_site):
    site = make_site({"/": page("Home", ["/a/"]), "/a/": page("A")}, validators=True)
    first = site.crawl()
    assert [e.kind for e in first] == ["page", "page"]
    assert all(e.etag.startswith('"') and e.last_modified.endswith("GMT") for e in first)
    validators = {e.url: (e.etag, e.last_modified) for e in first}

    site.requests.clear()
    site.request_headers.clear()
    second = site.crawl(validators=validators, seeds=[site.url + "/a/"])
    assert [(e.kind, e.url) for e in second] == [("unchanged", site.url + "/"), ("unchanged", site.url + "/a/")]
    sent = [h for path, h in zip(site.requests, site.request_headers) if path in ("/", "/a/")]
    assert all(h["If-None-Match"].startswith('"') and h["If-Modified-Since"].endswith("GMT") for h in sent)

    site.pages["/a/"] = page("A, changed")
    third = site.crawl(validators=validators, seeds=[site.url + "/a/"])
    assert [e.kind for e in third] == ["unchanged", "page"]


def test_thin_pages_and_duplicate_content_are_skipped_with_reasons(make_site):
    thin = "<html><head><title>Stub</title></head><body><main><h1>Stub</h1><p>Coming soon.</p></main></body></html>"
    site = make_site(
        {
            "/": page("Home", ["/stub/", "/one/", "/two/"]),
            "/stub/": (200, "text/html", thin),
            "/one/": page("Same"),
            "/two/": page("Same"),
        }
    )
    result = kinds(site.crawl())
    kind, reason = result["stub/"]
    assert kind == "skipped" and reason.startswith("thin page (") and reason.endswith(" characters)")
    assert result["one/"][0] == "page"
    assert result["two/"] == ("skipped", f"duplicate of {site.url}/one/")


def index_without_model(document: Document) -> None:
    """What indexing leaves behind (a chunk, the document ready), without loading a model."""
    space = space_active(document.source.assistant_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into ingestion_chunk (space_id, document_id, ordinal, text, search_text, heading_path, anchor,"
            " token_count, embedding) values (%s, %s, 0, %s, %s, '[]', '', 1, %s::vector)",
            [space.pk, document.pk, document.title, document.title, vector_literal([0.1] * space.dims)],
        )
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.READY, indexed_hash=document.content_hash, chunk_count=1
    )


def test_a_recrawl_through_the_task_keeps_unchanged_pages_and_their_chunks(db, make_site):
    site = make_site({"/": page("Home", ["/a/", "/b/"]), "/a/": page("A"), "/b/": page("B")}, validators=True)
    source = Source.objects.create(
        assistant=make_assistant(), url=site.url + "/", settings={"max_pages": 10, "max_depth": 2, "exclude": ["/b/"]}
    )
    first = CrawlRun.objects.create(source=source)
    source_crawl_task(first.pk)
    first.refresh_from_db()
    assert first.report["skipped"] == [{"url": site.url + "/b/", "reason": "excluded by pattern"}]
    documents = list(Document.objects.filter(source=source).order_by("url"))
    assert [d.url for d in documents] == [site.url + "/", site.url + "/a/"]
    assert all(d.etag and d.last_modified for d in documents)
    for document in documents:  # the worker's part (on-commit tasks do not run in this test)
        index_without_model(document)
    chunks = sorted(Chunk.objects.filter(document__source=source).values_list("document_id", "ordinal", "text"))
    assert chunks

    site.requests.clear()
    second = CrawlRun.objects.create(source=source)
    source_crawl_task(second.pk)
    second.refresh_from_db()
    assert second.status == CrawlRun.Status.DONE
    assert (second.pages_fetched, second.pages_unchanged) == (2, 2)
    kept = Document.objects.filter(source=source)
    assert sorted(kept.values_list("url", "status", "last_run")) == [
        (site.url + "/", "ready", second.pk),
        (site.url + "/a/", "ready", second.pk),
    ]
    assert sorted(Chunk.objects.filter(document__source=source).values_list("document_id", "ordinal", "text")) == chunks


HELP_SITE = {
    "/": page("Home", ["/help/", "/login/"]),
    "/help/": page("Help", ["/help/billing/", "/login/", "/signup/", "/help"]),
    "/help/billing/": page("Billing", ["/help/billing/refunds/", "/pricing/"]),
    "/help/billing/refunds/": page("Refunds"),
    "/login/": page("Log in"),
    "/signup/": page("Sign up"),
    "/pricing/": page("Pricing"),
}


@pytest.mark.parametrize("start", ["/help/", "/help", "/help/index.html"])
def test_a_crawl_stays_under_the_start_address_folder(make_site, start):
    pages = dict(HELP_SITE)
    pages["/help"] = (301, "text/html", "/help/")
    pages["/help/index.html"] = page("Help", ["/help/billing/", "/login/", "/signup/"])
    site = make_site(pages)
    fetched = {normalize_url(e.url).split("/", 3)[-1] for e in site.crawl(start) if e.kind == "page"}
    assert {"help/billing/", "help/billing/refunds/"} <= fetched
    assert not {"login/", "signup/", "pricing/", ""} & fetched
    assert not {"/login/", "/signup/", "/pricing/", "/"} & set(site.requests)


def test_a_redirect_out_of_the_folder_is_skipped_with_its_reason(make_site):
    site = make_site(
        {
            "/help/": page("Help", ["/help/account/"]),
            "/help/account/": (302, "text/html", "/login/"),
            "/login/": page("Log in", ["/signup/"]),
        }
    )
    events = kinds(site.crawl("/help/"))
    assert events["help/account/"][0] == "skipped" and "redirects out of the folder" in events["help/account/"][1]
    assert "/signup/" not in site.requests  # nothing of the page it led to is followed


def test_the_whole_site_or_include_patterns_lift_the_folder_limit(make_site):
    site = make_site(HELP_SITE)
    fetched = {normalize_url(e.url).split("/", 3)[-1] for e in site.crawl("/help/", whole_site=True)}
    assert {"login/", "signup/", "pricing/"} <= fetched
    site.requests.clear()
    events = site.crawl("/help/", include=("/pricing/", "/help/*"))
    assert "/pricing/" in site.requests and "/login/" not in site.requests
    assert kinds(events)["login/"] == ("skipped", "excluded by pattern")


def test_a_sitemap_address_replaces_the_default_sitemaps(make_site):
    site = make_site(
        {
            "/docs/": page("Docs"),
            "/docs/hidden/": page("Hidden, linked from nowhere"),
            "/sitemap.xml": (200, "application/xml", "<urlset><url><loc>/never/</loc></url></urlset>"),
            "/maps/docs.xml": (
                200,
                "application/xml",
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{url}/docs/hidden/</loc></url></urlset>',
            ),
        }
    )
    body = site.pages["/maps/docs.xml"]
    site.pages["/maps/docs.xml"] = (body[0], body[1], body[2].replace("{url}", site.url))
    events = site.crawl("/docs/", sitemap_url=site.url + "/maps/docs.xml")
    assert [e.url for e in events if e.kind == "page"] == [site.url + "/docs/", site.url + "/docs/hidden/"]
    assert "/sitemap.xml" not in site.requests


def test_urls_left_at_the_page_cap_are_counted_as_skipped(make_site):
    site = make_site(
        {"/": page("Home", [f"/p{i}/" for i in range(12)]), **{f"/p{i}/": page(f"P{i}") for i in range(12)}}
    )
    events = site.crawl(max_pages=5)
    left = [e for e in events if "page cap" in e.reason]
    assert len(left) == 1 and left[0].count == 8 and left[0].kind == "skipped"
    assert sum(e.count for e in events) == 13  # the home page and its twelve links


def test_a_crawl_report_adds_up(db, make_site):
    """found = fetched + skipped + failed, with a redirect, a duplicate, a failure, exclusions and the cap."""
    pages = {
        "/": page("Home", ["/a/", "/b", "/gone/", "/dup/", "/x/", *[f"/p{i}/" for i in range(6)]]),
        "/a/": page("A", ["/a/1/"]),
        "/a/1/": page("A1"),
        "/b": (301, "text/html", "/b/"),
        "/b/": page("B"),
        "/dup/": page("A", ["/a/1/"]),
        "/x/": page("X"),
        **{f"/p{i}/": page(f"P{i}") for i in range(6)},
    }
    site = make_site(pages)
    source = Source.objects.create(
        assistant=make_assistant(), url=site.url + "/", settings={"max_pages": 8, "max_depth": 3, "exclude": ["/x/"]}
    )
    run = CrawlRun.objects.create(source=source)
    source_crawl_task(run.pk)
    run.refresh_from_db()
    assert run.pages_failed >= 1 and run.pages_skipped >= 3 and run.pages_fetched >= 5
    assert run.pages_found == run.pages_fetched + run.pages_skipped + run.pages_failed
