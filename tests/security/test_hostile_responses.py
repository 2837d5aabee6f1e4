"""What a server that is allowed to answer can do with its answer, on every path that fetches:
compression bombs (stacked ``Content-Encoding``, or one layer inflating far past the cap) and
answers dripped one byte at a time. Run in the network namespace of the SSRF suite, where the
hostile site has a public address and the product runs with its production defaults.

Each case bounds the agent's peak memory growth while it handled the answer (``growth_mib``) and,
for drips, the time it took. The bombs decode to 1 GiB; before the fix the stacked one (under 2 KiB
on the wire) grew the process by about that much.
"""

from __future__ import annotations

import json

import pytest

from tests.security.test_ssrf import assert_no_hits, page, result_of, youtube_routes

pytestmark = pytest.mark.django_db

GiB = 1024 * 1024 * 1024
STACKED = {"kind": "bomb", "size": GiB, "layers": 2, "headers": {"Content-Encoding": "gzip, gzip"}}
SINGLE = {"kind": "bomb", "size": GiB, "layers": 1, "headers": {"Content-Encoding": "gzip"}}
MAX_GROWTH_MIB = 48  # the settings' caps (10 MiB a page) and the agent's own work, far below 1 GiB
ROBOTS = {"kind": "respond", "body": "User-agent: *\nAllow: /\n"}


def typed(route: dict, content_type: str) -> dict:
    return {**route, "headers": {**route.get("headers", {}), "Content-Type": content_type}}


def drip(interval: float = 0.25, count: int = 200, **options) -> dict:
    return {"kind": "drip", "interval": interval, "count": count, **options}


def reasons(result: dict) -> str:
    return json.dumps(result.get("report", {}))


def check(report: dict, *, seconds: float | None = None) -> dict:
    assert_no_hits(report)
    assert report["growth_mib"] < MAX_GROWTH_MIB, report
    if seconds is not None:
        assert report["seconds"] < seconds, report
    return result_of(report)


# --- Bombs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bomb, reason",
    [(STACKED, "response refused: the response has 2 content encodings"), (SINGLE, "page larger than the size limit")],
)
def test_a_crawled_page(netns, bomb, reason):
    routes = {"/robots.txt": ROBOTS, "/": typed(bomb, "text/html")}
    result = check(netns.run("website_source", url="http://site.test/", routes=routes))
    assert reason in reasons(result), result


@pytest.mark.parametrize("bomb", [STACKED, SINGLE])
def test_robots_txt_and_sitemaps(netns, bomb):
    routes = {"/robots.txt": bomb, "/": page([])}
    result = check(netns.run("website_source", url="http://site.test/", routes=routes))
    if bomb is STACKED:  # an unusable robots.txt allows nothing
        assert "disallowed by robots.txt" in reasons(result) and result["pages"] == 0, result
    else:  # one over 500 KiB allows everything (as Google reads only that much of it)
        assert result["pages"] == 1, result
    robots = {"kind": "respond", "body": "User-agent: *\nAllow: /\nSitemap: http://site.test/sitemap.xml\n"}
    routes = {"/robots.txt": robots, "/sitemap.xml": typed(bomb, "application/xml"), "/": page([])}
    report = netns.run("website_source", url="http://site.test/", routes=routes)
    assert result_of(report)["pages"] == 1  # the crawl goes on without the sitemap
    assert "/sitemap.xml" in [r["path"] for r in report["site"]]
    check(report)


@pytest.mark.parametrize(
    "bomb, error",
    [
        (STACKED, "the document was refused: the response has 2 content encodings"),
        (SINGLE, "larger than the 5 MB limit"),
    ],
)
def test_a_document_by_url(netns, bomb, error):
    settings = {"UPLOAD_MAX_BYTES": 5 * 1024 * 1024}
    report = netns.run("document_url", url="http://site.test/report.pdf", settings=settings, routes={"*": bomb})
    result = check(report)
    assert result["document"] == "failed" and error in result["error"], result


def test_a_video_transcript(netns):
    routes = youtube_routes("http://site.test/api/timedtext?lang=en")
    routes["/api/timedtext"] = typed(STACKED, "text/xml")
    report = netns.run(
        "document_url",
        url="https://youtu.be/dQw4w9WgXcQ",
        settings={"YOUTUBE_BASE_URL": "http://site.test"},
        routes=routes,
    )
    result = check(report)
    assert result["document"] == "failed" and "refused" in result["error"], result


def test_a_custom_domain_check(netns):
    result = check(netns.run("domain", host="site.test", routes={"*": STACKED}))
    assert "was refused: the response has 2 content encodings" in result["error"], result


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("bomb, detail", [(STACKED, "2 content encodings"), (SINGLE, "exceeds 524288 bytes")])
def test_a_model_answer(netns, kind, bomb, detail):
    settings = {"OUTBOUND_STREAM_MAX_BYTES": 512 * 1024}  # below the SSE parser's own line limit (1M)
    routes = {"*": typed(bomb, "text/event-stream")}
    result = check(netns.run("llm", base_url="http://site.test/v1", kind=kind, settings=settings, routes=routes))
    assert result["failure"] == "bad_response" and detail in result["detail"], result


@pytest.mark.parametrize("kind", ["openai", "gemini"])
@pytest.mark.parametrize("bomb, detail", [(STACKED, "2 content encodings"), (SINGLE, "exceeds 4194304 bytes")])
def test_embedding_vectors(netns, kind, bomb, detail):
    settings = {
        "EMBEDDING_API_BASE_URL": "http://site.test/v1",
        "GEMINI_BASE_URL": "http://site.test",
        "OUTBOUND_STREAM_MAX_BYTES": 4 * 1024 * 1024,
    }
    routes = {"*": typed(bomb, "application/json")}
    result = check(netns.run("embedding", kind=kind, settings=settings, routes=routes))
    assert "response refused" in result["failure"] and detail in result["failure"], result


# --- Drips: every path ends at its deadline -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("in_headers", [False, True])
def test_a_dripping_page(netns, in_headers):
    routes = {"/robots.txt": ROBOTS, "/": drip(in_headers=in_headers, headers={"Content-Type": "text/html"})}
    report = netns.run("website_source", url="http://site.test/", settings={"OUTBOUND_DEADLINE": 1.5}, routes=routes)
    result = check(report, seconds=4)
    assert "page took too long to arrive" in reasons(result), result


@pytest.mark.slow
def test_a_dripping_sitemap_does_not_hold_the_crawl(netns):
    robots = {"kind": "respond", "body": "User-agent: *\nAllow: /\nSitemap: http://site.test/sitemap.xml\n"}
    routes = {"/robots.txt": robots, "/sitemap.xml": drip(), "/": page([])}
    report = netns.run("website_source", url="http://site.test/", settings={"OUTBOUND_DEADLINE": 1.5}, routes=routes)
    assert check(report, seconds=4)["pages"] == 1


@pytest.mark.slow
def test_a_dripping_document(netns):
    settings = {"OUTBOUND_DOWNLOAD_DEADLINE": 1.5}
    report = netns.run("document_url", url="http://site.test/report.pdf", settings=settings, routes={"*": drip()})
    result = check(report, seconds=4)
    assert result["error"] == "the document took longer than 1.5 s", result


@pytest.mark.slow
def test_a_dripping_video_page(netns):
    settings = {"YOUTUBE_BASE_URL": "http://site.test", "OUTBOUND_DEADLINE": 1.5}
    report = netns.run("document_url", url="https://youtu.be/dQw4w9WgXcQ", settings=settings, routes={"*": drip()})
    result = check(report, seconds=4)
    assert "took longer than 1.5 s" in result["error"], result


@pytest.mark.slow
def test_a_dripping_custom_domain(netns):
    """The issue: a custom-domain check took 40 s for 6 bytes. It now ends at its deadline (10 s)."""
    report = netns.run("domain", host="site.test", routes={"*": drip(interval=1.0, count=40)}, timeout=60)
    result = check(report, seconds=12.5)
    assert "took longer than 10 s" in result["error"], result


@pytest.mark.slow
@pytest.mark.parametrize("in_headers", [False, True])
def test_a_dripping_model_answer(netns, in_headers):
    """LLM_TIMEOUT bounds the whole answer: the headers and an error's body too, not only the stream."""
    sse = {"Content-Type": "text/event-stream"}
    routes = {"*": drip(piece=": keep-alive\n", in_headers=in_headers, headers=sse)}
    report = netns.run("llm", base_url="http://site.test/v1", settings={"LLM_TIMEOUT": 2.0}, routes=routes)
    result = check(report, seconds=4.5)
    assert result["failure"] == "timeout", result
    routes = {"*": drip(status=500, headers={"Content-Type": "application/json"})}  # an error body, dripped
    report = netns.run("llm", base_url="http://site.test/v1", settings={"LLM_TIMEOUT": 2.0}, routes=routes)
    assert check(report, seconds=4.5)["failure"] == "timeout", report


@pytest.mark.slow
def test_dripping_vectors(netns):
    settings = {"EMBEDDING_API_BASE_URL": "http://site.test/v1"}
    patch = {"ingestion.embedding.api.REQUEST_TIMEOUT": 1.5, "ingestion.embedding.api.MAX_RETRIES": 1}
    routes = {"*": drip(headers={"Content-Type": "application/json"})}
    report = netns.run("embedding", kind="openai", settings=settings, patch=patch, routes=routes)
    result = check(report, seconds=5)  # two attempts of 1.5 s and the wait between them
    assert "DeadlineExceeded" in result["failure"], result


# --- Webhook receivers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bomb, outcome, error",
    [(STACKED, "retry", "the answer was refused: the response has 2 content encodings"), (SINGLE, "succeeded", "")],
)
def test_a_webhook_receiver_answering_a_bomb(netns, bomb, outcome, error):
    """A 2xx counts; its body is read no further than its first bytes, never inflated. Stacked encodings
    are refused with the headers."""
    report = netns.run("webhook", url="http://site.test/hook", routes={"*": typed(bomb, "application/json")})
    result = check(report)
    assert result["created"] and result["outcome"] == outcome and result["error"].startswith(error), result


def test_a_webhook_receiver_dripping_its_answer(netns):
    report = netns.run(
        "webhook",
        url="http://site.test/hook",
        settings={"WEBHOOK_TIMEOUT": 2.0},
        routes={"*": drip(in_headers=True, headers={"Content-Type": "application/json"})},
    )
    result = check(report, seconds=4.5)
    assert result["outcome"] == "retry" and result["error"] == "no answer within 2 s", result
