"""JavaScript rendering gives Chromium no network of its own.

A hostile page (tests/ingestion/crawling/hostile.py) tries every way we know to make the browser open
a connection: popups, frames, form posts, navigations, beacons, prefetches, workers, WebSockets,
WebRTC, WebTransport. Each is aimed at a sentinel of its own, which must count zero connections:
everything goes through the SSRF-safe client (which refuses the sentinels: they are not on the
allow-list) or is refused. On loopback here, and with the real internal addresses (169.254.169.254,
10.x) inside a network namespace.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatsite.db import database_url
from ingestion.crawling import browser
from ingestion.crawling.browser import PageRenderer
from tests.ingestion.crawling.hostile import (
    ALLOWED_GET,
    ALLOWED_VECTORS,
    TEXT,
    VECTORS,
    Sentinel,
    close_all,
    hostile_site_pages,
    vector_reports,
)
from tests.ingestion.crawling.test_crawler import Site
from tests.ingestion.crawling.test_js_rendering import needs_chromium

pytestmark = pytest.mark.slow  # several seconds a test: make test runs them, make test-fast does not

REPO = Path(__file__).resolve().parents[3]
# Requests the interception never sees (Playwright cannot route them): only the backstop stands
# between them and the network. A popup's document written by its opener sometimes runs before
# Playwright attaches to the popup, so its requests may take this way too.
PAST_THE_INTERCEPTION = [
    "shared_worker_fetch",
    "worker_websocket",
    "speculation_prefetch",
    "speculation_prerender",
    "webrtc_turn_tcp",
    "webrtc_stun_udp",
]
MAY_PASS_THE_INTERCEPTION = {*PAST_THE_INTERCEPTION, "popup_written"}


def serve_hostile_page(settings, vectors):
    """The hostile page on a loopback site, a sentinel per vector (every other one on ::1), and an
    allow-listed sentinel."""
    sentinels = {
        name: Sentinel("::1" if index % 2 else "127.0.0.1", kind=VECTORS[name][0]) for index, name in enumerate(vectors)
    }
    allowed = Sentinel()
    site = Site(hostile_site_pages({name: s.target for name, s in sentinels.items()}, allowed=allowed.target))
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = [site.host, allowed.address]
    return site, sentinels, allowed


def close(site, sentinels, allowed):
    site.server.shutdown()
    close_all([*sentinels.values(), allowed])


@pytest.fixture
def hostile(settings):
    served = serve_hostile_page(settings, VECTORS)
    yield served
    close(*served)


def leaks(sentinels) -> dict[str, list[str]]:
    return {name: sentinel.hits for name, sentinel in sentinels.items() if sentinel.hits}


def vectors_at_the_proxy(refused: list[str], sentinels) -> set[str]:
    """The vectors whose sentinel's address is in the refusing proxy's request lines."""
    by_address = {sentinel.address: name for name, sentinel in sentinels.items()}
    found = {match for line in refused for match in re.findall(r"\[[0-9a-f:]+\]:\d+|[0-9.]+:\d+", line)}
    return {by_address[address] for address in found if address in by_address}


@needs_chromium
def test_a_hostile_page_opens_no_connection_of_its_own(hostile):
    site, sentinels, allowed = hostile
    with PageRenderer(timeout=10) as renderer:
        html = renderer.render(site.url + "/", site.pages["/"][2])
        contexts_left = renderer._thread.submit(lambda: len(renderer._browser.contexts)).result()
    time.sleep(0.5)  # connections already on their way when the browser closed
    reports = vector_reports(html)
    assert leaks(sentinels) == {}, reports
    # From the allow-listed host, only the page's GET, made by the safe client (no browser headers).
    assert allowed.hits == [f"{ALLOWED_GET} HTTP/1.1"], reports
    assert "sec-fetch" not in allowed.heads[0].lower()
    # The page rendered as itself (its script and data came through the safe client), not as the
    # browser's error page after a refused navigation, and every vector ran.
    assert TEXT.strip() in html
    assert set(reports) == set(VECTORS) | set(ALLOWED_VECTORS), reports
    # What the interception cannot see was turned away by the refusing proxy; nothing else got there.
    at_the_proxy = vectors_at_the_proxy(renderer.proxy.requests, sentinels)
    assert "shared_worker_fetch" in at_the_proxy, renderer.proxy.requests
    assert at_the_proxy <= MAY_PASS_THE_INTERCEPTION, renderer.proxy.requests
    assert contexts_left == 0


@needs_chromium
def test_a_page_that_posts_a_form_while_it_loads_is_rendered_as_itself(settings):
    """The refused navigation leaves the page in place (as far as Chromium had parsed it when the
    navigation began): not the browser's error page, and not a failure."""
    sentinel = Sentinel()
    html = (
        f'<html><head><title>Away</title></head><body><p>{TEXT}</p><form method="post" action="{sentinel.target}/away">'
        "</form><script>document.forms[0].submit()</script></body></html>"
    )
    site = Site({"/": (200, "text/html", html)})
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = [site.host]
    try:
        with PageRenderer(timeout=2) as renderer:
            rendered = renderer.render(site.url + "/", html)
        time.sleep(0.5)
        assert sentinel.hits == []
        assert TEXT.strip() in rendered and "<title>Away</title>" in rendered
    finally:
        site.server.shutdown()
        sentinel.close()


def without(*prefixes):
    """chromium_args without the flags that start with ``prefixes``."""
    real = browser.chromium_args
    return lambda host, port: [arg for arg in real(host, port) if not arg.startswith(prefixes)]


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize(
    "flags_left_out, leaked",
    [
        # The control: without the backstop, the sentinels see what the interception misses.
        (("--proxy-server", "--host-resolver-rules", "--webrtc-ip-handling-policy"), set(PAST_THE_INTERCEPTION)),
        # Either half of the backstop holds on its own.
        (("--host-resolver-rules",), set()),
        (("--proxy-server", "--proxy-bypass-list"), set()),
    ],
    ids=["no-backstop", "proxy-only", "resolver-rules-only"],
)
def test_each_layer_of_the_backstop_holds_alone(settings, monkeypatch, flags_left_out, leaked):
    monkeypatch.setattr(browser, "chromium_args", without(*flags_left_out))
    served = serve_hostile_page(settings, PAST_THE_INTERCEPTION)
    try:
        site, sentinels, _ = served
        with PageRenderer(timeout=10) as renderer:
            html = renderer.render(site.url + "/", site.pages["/"][2])
        time.sleep(0.5)
        assert set(leaks(sentinels)) == leaked, leaks(sentinels)
        assert set(vector_reports(html)) >= set(PAST_THE_INTERCEPTION)
    finally:
        close(*served)


@needs_chromium
def test_the_refusing_proxy_starts_and_stops_with_the_browser():
    with PageRenderer(timeout=5) as renderer:
        address = (renderer.proxy.host, renderer.proxy.port)
        with socket.create_connection(address, timeout=2) as conn:
            conn.sendall(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 403 ")
        assert renderer.proxy.requests[-1] == "CONNECT 10.0.0.1:443 HTTP/1.1"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)


def namespaces_work() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        command = ["unshare", "--user", "--map-root-user", "--net", "--", "ip", "link", "set", "lo", "up"]
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@needs_chromium
@pytest.mark.skipif(not namespaces_work(), reason="needs unshare --user --net (user namespaces) and iproute2")
def test_internal_addresses_stay_unreached_in_a_network_namespace(settings):
    """169.254.169.254 and 10.77.0.1 really answer inside the namespace (the control connections
    reach them); the hostile page's vectors, half aimed at each, reach neither."""
    command = ["unshare", "--user", "--map-root-user", "--net", "--"]
    command += [sys.executable, "-m", "tests.ingestion.crawling.netns_probe", "--in-namespace"]
    # The probe never touches the database; the URL only spares its settings starting one.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.test_settings"}
    env["DATABASE_URL"] = database_url(settings.DATABASES["default"])
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    tcp = [name for name, (kind, _) in VECTORS.items() if kind != "udp"]
    assert {name: len(result["control"][name]) for name in tcp} == dict.fromkeys(tcp, 1)
    assert {name: hits for name, hits in result["hits"].items() if hits} == {}, result["reports"]
    assert result["allowed"] == [f"{ALLOWED_GET} HTTP/1.1"]
    assert result["rendered_text"], result["reports"]
    assert set(result["reports"]) == set(VECTORS) | set(ALLOWED_VECTORS), result["reports"]
