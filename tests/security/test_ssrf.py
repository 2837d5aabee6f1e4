"""SSRF through every URL a tenant can give, inside a network namespace where the targets are real.

Each test hands a scenario to the agent (tests/security/agent.py), which runs the product's own code
in a network namespace whose loopback carries sentinels on the loopback, private, carrier-grade NAT
and cloud-metadata addresses, and a hostile public site (``site.test``). A sentinel counts every
connection; every case asserts that none of them saw one. The control at the top shows that each
path does reach a sentinel once private addresses are allowed: the zeros below are the defence,
not an unreachable target.

Names: ``private.test`` (10.0.0.1), ``metadata.test`` (169.254.169.254), ``loopback.test``,
``v6.test`` (::1), ``mixed.test`` (a public and a private address) and ``rebind.test`` (public at
the first lookup, private afterwards) are answered by the agent's stand-in for DNS.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db  # the agent works in the test database, and rolls its rows back

SENTINEL_URLS = {
    "loopback": "http://127.0.0.1/",
    "loopback-v6": "http://[::1]/",
    "private": "http://10.0.0.1/",
    "private-192": "http://192.168.1.1/",
    "carrier-nat": "http://100.64.0.1/",
    "metadata": "http://169.254.169.254/",
}
# Other spellings and names of the same targets.
DISGUISED = [
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0.0.0.0/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://167772161/",  # 10.0.0.1
    "http://private.test/",
    "http://metadata.test/latest/meta-data/",
    "http://loopback.test/",
    "http://v6.test/",
    "http://mixed.test/",
    "http://localhost/",
]
TARGETS = [*SENTINEL_URLS.values(), *DISGUISED]


def assert_no_hits(report: dict) -> None:
    assert report["hits"] == dict.fromkeys(report["hits"], 0), report


def result_of(report: dict) -> dict:
    """What the scenario returned (it raised nothing)."""
    assert "result" in report, report.get("traceback")
    return report["result"]


def redirect_routes(target: str, status: int = 302) -> dict:
    return {"*": {"kind": "redirect", "location": target, "status": status}}


# --- The control: the sentinels are there to be hit ------------------------------------------------


def test_control_every_path_reaches_a_sentinel_once_private_addresses_are_allowed(netns):
    report = netns.run(
        "control", url="http://10.0.0.1/", host="private.test", settings={"OUTBOUND_ALLOW_PRIVATE": True}
    )
    result = result_of(report)
    reached = result["reached"]
    # robots.txt, then the page; a path that reached nothing says why in its outcome
    assert reached == dict.fromkeys(reached, reached["fetch"]) | {"crawl": 2}, json.dumps(result, indent=1)
    assert reached["fetch"] == 1
    for name, url in SENTINEL_URLS.items():
        settings = {"OUTBOUND_ALLOW_PRIVATE": True}
        if name == "metadata":  # only the operator's allow-list opens a metadata address
            settings["OUTBOUND_ALLOWED_HOSTS"] = ["169.254.169.254:80"]
        report = netns.run("fetch", url=url, settings=settings)
        assert result_of(report)["status"] == 200, report
        assert report["hits"][name] == 1, report


# --- Website sources: the start URL, links, redirects, sitemaps, extra hosts ---------------------------


@pytest.mark.parametrize("url", TARGETS)
def test_website_source_url(netns, url):
    report = netns.run("website_source", url=url)
    assert_no_hits(report)
    result = result_of(report)
    if result["created"]:  # names pass the form (no DNS lookup there); the crawl refuses them
        assert result["pages"] == 0
    else:  # refused by the form ("Enter a valid URL.") or by the outbound check ("cannot be crawled")
        assert result["status"] == 400 and result["body"]["error"]["code"] == "validation_failed", result


def page(links: list[str]) -> dict:
    text = " ".join(["This page talks at length about things worth indexing."] * 10)
    anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
    html = f"<html><head><title>Home</title></head><body><main><h1>Home</h1><p>{text}</p>{anchors}</main></body></html>"
    return {"kind": "respond", "body": html, "headers": {"Content-Type": "text/html; charset=utf-8"}}


def test_links_and_redirects_of_a_crawled_site(netns):
    hops = {f"/go-{name}": {"kind": "redirect", "location": url} for name, url in SENTINEL_URLS.items()}
    hops["/go-307"] = {"kind": "redirect", "location": "http://169.254.169.254/latest/meta-data/", "status": 307}
    hops["/go-308"] = {"kind": "redirect", "location": "http://private.test/", "status": 308}
    hops["/go-scheme-relative"] = {"kind": "redirect", "location": "//10.0.0.1/"}
    hops["/go-rebind"] = {"kind": "redirect", "location": "http://rebind.test/"}
    routes = {
        "/robots.txt": {"kind": "respond", "body": "User-agent: *\nAllow: /\n"},
        "/": page([*TARGETS, *[f"http://site.test{hop}" for hop in hops]]),
        **hops,
    }
    report = netns.run(
        "website_source",
        url="http://site.test/",
        extra_hosts=["10.0.0.1", "169.254.169.254", "private.test", "metadata.test", "127.0.0.1", "[::1]"],
        max_pages=40,
        routes=routes,
    )
    assert_no_hits(report)
    assert result_of(report)["pages"] >= 1
    seen = {request["path"] for request in report["site"]}
    assert set(hops) <= seen, seen  # every redirect hop was followed to the refused address


def test_sitemaps_of_a_crawled_site(netns):
    index = "".join(
        f"<sitemap><loc>{url}</loc></sitemap>"
        for url in [
            "http://site.test/sitemap-redirect.xml",
            "http://169.254.169.254/latest/meta-data/sitemap.xml",
            "http://metadata.test/sitemap.xml",
            "http://10.0.0.1/sitemap.xml",
        ]
    )
    urlset = "".join(f"<url><loc>{url}</loc></url>" for url in TARGETS)
    namespace = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    routes = {
        "/robots.txt": {
            "kind": "respond",
            "body": "User-agent: *\nAllow: /\nSitemap: http://site.test/index.xml\n"
            "Sitemap: http://private.test/sitemap.xml\nSitemap: http://[::1]/sitemap.xml\n",
        },
        "/index.xml": {"kind": "respond", "body": f"<sitemapindex {namespace}>{index}</sitemapindex>"},
        "/sitemap-redirect.xml": {"kind": "redirect", "location": "http://10.0.0.1/sitemap.xml"},
        "/pages.xml": {"kind": "respond", "body": f"<urlset {namespace}>{urlset}</urlset>"},
        "/": page([]),
    }
    report = netns.run(
        "website_source",
        url="http://site.test/",
        extra_hosts=["10.0.0.1", "169.254.169.254", "private.test", "metadata.test", "[::1]"],
        routes=routes,
    )
    assert_no_hits(report)
    seen = {request["path"] for request in report["site"]}
    assert {"/robots.txt", "/index.xml", "/sitemap-redirect.xml", "/"} <= seen, seen


# --- Documents and videos by address ----------------------------------------------------------------


@pytest.mark.parametrize("url", [*[target + "report.pdf" for target in TARGETS], "http://site.test/report.pdf"])
def test_document_by_url(netns, url):
    report = netns.run("document_url", url=url, routes=redirect_routes("http://10.0.0.1/report.pdf"))
    assert_no_hits(report)
    result = result_of(report)
    assert result["created"] and result["document"] == "failed", result
    assert "may not be fetched" in result["error"], result


def youtube_routes(captions_url: str) -> dict:
    """YouTube's watch page and player API, naming a caption track at ``captions_url``."""
    config = json.dumps({"INNERTUBE_API_KEY": "AIzaSyKey", "INNERTUBE_CLIENT_NAME": "WEB"})
    player = {
        "playabilityStatus": {"status": "OK"},
        "videoDetails": {"videoId": "dQw4w9WgXcQ", "title": "A video", "author": "Someone", "lengthSeconds": "60"},
        "captions": {
            "playerCaptionsTracklistRenderer": {
                "captionTracks": [
                    {"baseUrl": captions_url, "name": {"runs": [{"text": "English"}]}, "languageCode": "en"}
                ]
            }
        },
    }
    return {
        "/watch": {
            "kind": "respond",
            "body": f"<html><head><script>ytcfg.set({config});</script></head></html>",
            "headers": {"Content-Type": "text/html; charset=utf-8"},
        },
        "/youtubei/v1/player": {
            "kind": "respond",
            "body": json.dumps(player),
            "headers": {"Content-Type": "application/json"},
        },
    }


@pytest.mark.parametrize(
    "base_url, routes",
    [
        # The transcript's address comes from the player's answer: it is checked like any other.
        ("http://site.test", youtube_routes("http://169.254.169.254/latest/meta-data/?lang=en&fmt=srv3")),
        ("http://site.test", youtube_routes("http://[::1]/api/timedtext?lang=en")),
        ("http://site.test", redirect_routes("http://169.254.169.254/latest/meta-data/")),
        ("http://10.0.0.1", {}),
        ("http://metadata.test", {}),
        ("http://rebind.test", {"*": page([])}),  # the first lookup is public; a rebinding connect would be private
    ],
)
def test_youtube_video(netns, base_url, routes):
    """The video's own address is YouTube's; where its transcript is fetched from is the operator's
    YOUTUBE_BASE_URL and what the player's answer names."""
    report = netns.run(
        "document_url",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        settings={"YOUTUBE_BASE_URL": base_url},
        routes=routes,
    )
    assert_no_hits(report)
    result = result_of(report)
    assert result["document"] == "failed", report
    if "/youtubei/v1/player" in routes:
        assert [r["path"].split("?")[0] for r in report["site"]][-1] == "/youtubei/v1/player", report
        assert "may not be fetched" in result["error"], result


def test_a_video_address_on_a_private_host_is_a_document_address_and_refused(netns):
    report = netns.run("document_url", url="http://10.0.0.1/watch?v=dQw4w9WgXcQ")
    assert_no_hits(report)
    assert "may not be fetched" in result_of(report)["error"]


# --- Custom domains -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["private.test", "metadata.test", "loopback.test", "v6.test", "mixed.test", "localhost", "site.test"]
)
def test_custom_domain_verification(netns, host):
    report = netns.run("domain", host=host, routes=redirect_routes("http://10.0.0.1/token.txt"))
    assert_no_hits(report)
    result = result_of(report)
    assert not result.get("verified"), result
    if result["created"]:
        assert "may not be fetched" in result["error"], result


# --- Images: never fetched by the server ----------------------------------------------------------------


def test_avatar_and_logo_urls_are_never_fetched_by_the_server(netns):
    report = netns.run(
        "images", avatar_url="http://10.0.0.1/avatar.png", logo_url="http://169.254.169.254/latest/meta-data/logo.png"
    )
    assert_no_hits(report)
    result = result_of(report)
    assert result["saved"] == 200 and result["avatar_url"] == "http://10.0.0.1/avatar.png", result
    assert set(result["pages"].values()) == {200}, result


# --- Model and embedding APIs ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    "base_url",
    ["http://10.0.0.1/v1", "http://169.254.169.254/", "http://private.test/v1", "http://[::1]/", "http://site.test/v1"],
)
def test_assistant_model_base_url(netns, kind, base_url):
    report = netns.run("llm", base_url=base_url, kind=kind, routes=redirect_routes("http://10.0.0.1/v1/x", 307))
    assert_no_hits(report)
    result = result_of(report)
    if base_url.startswith("http://site.test"):
        assert result["failure"] == "bad_response" and "HTTP 307" in result["detail"], result  # not followed
    else:
        assert result["failure"] == "refused", result


@pytest.mark.parametrize("kind", ["openai", "gemini"])
@pytest.mark.parametrize(
    "base_url", ["http://10.0.0.1/v1", "http://metadata.test", "http://[::ffff:7f00:1]/v1", "http://site.test/v1"]
)
def test_embedding_api_url(netns, kind, base_url):
    settings = {"EMBEDDING_API_BASE_URL": base_url, "GEMINI_BASE_URL": base_url}
    report = netns.run("embedding", kind=kind, settings=settings, routes=redirect_routes("http://10.0.0.1/v1/x", 307))
    assert_no_hits(report)
    result = result_of(report)
    if base_url.startswith("http://site.test"):
        assert "HTTP 307" in result["failure"], result
    else:
        assert result["cause"] == "OutboundRefused", result


# --- Redirects and rebinding on the client itself -------------------------------------------------------


@pytest.mark.parametrize(
    "status, target", [(302, target) for target in TARGETS] + [(status, TARGETS[2]) for status in (301, 303, 307, 308)]
)
def test_redirects_to_private_addresses(netns, status, target):
    report = netns.run("fetch", url="http://site.test/start", routes=redirect_routes(target, status))
    assert_no_hits(report)
    assert report["error"].startswith("OutboundRefused"), report
    assert [r["path"] for r in report["site"]] == ["/start"]


def test_dns_rebinding(netns):
    """The name answers public, then private: the client connects only to what it checked (the
    hostile site sees the request, under its name), and the next lookup is refused."""
    routes = {"/": {"kind": "redirect", "location": "http://rebind.test/again"}}
    report = netns.run("fetch", url="http://rebind.test/", routes=routes)
    assert_no_hits(report)
    assert report["error"].startswith("OutboundRefused") and "10.0.0.1" in report["error"], report
    assert report["site"] == [{"method": "GET", "path": "/", "host": "rebind.test"}]
    assert report["rebind_lookups"] == 2

    report = netns.run("llm", base_url="http://rebind.test/v1", routes={"*": {"kind": "respond", "status": 503}})
    assert_no_hits(report)  # the retry after the 503 resolves again and is refused
    assert result_of(report)["failure"] == "refused" and len(report["site"]) == 1, report


# --- Webhooks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", TARGETS)
def test_webhook_endpoint_url(netns, url):
    """Refused when saved (the error at the URL field), and refused at send for a URL in the
    database anyway (its name resolved elsewhere when it was saved)."""
    report = netns.run("webhook", url=url)
    assert_no_hits(report)
    result = result_of(report)
    assert result["created"] is False and result["form_status"] == 400, result
    assert list(result["form_errors"]) == ["url"], result
    assert result["outcome"] == "retry" and result["error"].startswith("refused"), result


@pytest.mark.parametrize(
    "status, target",
    [(302, "http://10.0.0.1/"), (307, "http://169.254.169.254/latest/meta-data/"), (308, "http://private.test/")],
)
def test_webhook_redirects_to_private_addresses_are_not_followed(netns, status, target):
    report = netns.run("webhook", url="http://site.test/hook", routes=redirect_routes(target, status))
    assert_no_hits(report)
    result = result_of(report)
    assert result["created"] is True and result["outcome"] == "retry", result
    assert result["error"] == "redirects are not followed" and len(report["site"]) == 1, report


def test_webhook_dns_rebinding(netns):
    """Public at the first lookup, private afterwards: refused when saved (the service looks again after
    the form) and at send."""
    report = netns.run("webhook", url="http://rebind.test/hook", routes={"*": {"kind": "respond", "status": 200}})
    assert_no_hits(report)
    result = result_of(report)
    assert result["form_status"] == 400 and list(result["form_errors"]) == ["url"], result
    assert result["outcome"] == "retry" and result["error"].startswith("refused"), result
