"""What a hostile server can do to the outbound client after it has been allowed to answer:
compression bombs (stacked ``Content-Encoding``), unknown encodings, and bodies or headers dripped
one byte at a time. Real servers on 127.0.0.1, put on the operator allow-list.

The memory figures are measured in a child process (its peak RSS while taking the response, from
``VmHWM`` reset just before, against its RSS then), so that nothing else of the test run counts.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
import zlib

import httpx
import pytest
from django.conf import settings as django_settings

from chatsite.lib import http as outbound
from chatsite.lib.http import (
    DeadlineExceeded,
    ResponseRefused,
    ResponseTooLarge,
    async_client,
    fetch,
    fetch_or_fail,
    sync_client,
)
from tests.security.hostile import Server, drip, gzip_of_zeros, respond, stacked_gzip_bomb

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def strict_settings(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_TIMEOUT = 5.0
    settings.OUTBOUND_MAX_BYTES = 1_000_000
    settings.OUTBOUND_STREAM_MAX_BYTES = 2_000_000
    settings.OUTBOUND_DEADLINE = 30.0
    return settings


@pytest.fixture
def server(strict_settings):
    srv = Server()
    strict_settings.OUTBOUND_ALLOWED_HOSTS = [srv.hostport]
    yield srv
    srv.close()


# --- Content-Encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,deflate", "deflate, gzip", "x-gzip, gzip"])
def test_more_than_one_encoding_layer_is_refused(server, encoding):
    server.routes["/two"] = respond(200, gzip.compress(gzip.compress(b"hello")), {"Content-Encoding": encoding})
    with pytest.raises(ResponseRefused, match="content encoding"):
        fetch(server.url("/two"))
    with sync_client() as client, pytest.raises(ResponseRefused):
        client.get(server.url("/two"))

    async def stream():
        async with async_client() as client, client.stream("GET", server.url("/two")) as response:
            return [chunk async for chunk in response.aiter_bytes()]

    with pytest.raises(ResponseRefused):
        asyncio.run(stream())


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "bzip2", "gzip;q=1"])
def test_an_unknown_encoding_is_refused(server, encoding):
    server.routes["/odd"] = respond(200, b"\x00\x01\x02", {"Content-Encoding": encoding})
    with pytest.raises(ResponseRefused, match="content encoding"):
        fetch(server.url("/odd"))
    with pytest.raises(outbound.FetchFailed, match=r"^the page was refused: .*content encoding"):
        fetch_or_fail(server.url("/odd"), subject="the page")


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", "deflate", "identity", "identity, gzip", ""])
def test_one_layer_is_decoded(server, encoding):
    text = b"Hello, " * 1000
    if "gzip" in encoding.lower():
        body = gzip.compress(text)
    elif encoding == "deflate":
        body = zlib.compress(text)
    else:
        body = text
    server.routes["/one"] = respond(200, body, {"Content-Encoding": encoding})
    assert fetch(server.url("/one")).content == text
    with sync_client() as client:
        assert client.get(server.url("/one")).content == text


def test_raw_deflate_without_zlib_header_is_decoded(server):
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflater.compress(b"raw deflate " * 100) + deflater.flush()
    server.routes["/raw"] = respond(200, body, {"Content-Encoding": "deflate"})
    assert fetch(server.url("/raw")).content == b"raw deflate " * 100


def test_broken_gzip_is_a_decoding_error(server):
    server.routes["/broken"] = respond(200, b"\x1f\x8b\x08\x00garbage" * 10, {"Content-Encoding": "gzip"})
    with pytest.raises(httpx.DecodingError):
        fetch(server.url("/broken"))


def test_only_gzip_and_deflate_are_asked_for(server):
    fetch(server.url("/"))
    with sync_client() as client:
        client.get(server.url("/"))
    assert [r.headers["accept-encoding"] for r in server.requests] == ["gzip, deflate", "gzip, deflate"]


def test_streaming_clients_cap_decoded_bytes(server, strict_settings):
    server.routes["/bomb"] = respond(200, gzip_of_zeros(50 * MiB), {"Content-Encoding": "gzip"})
    with sync_client() as client, pytest.raises(ResponseTooLarge):
        client.get(server.url("/bomb"))  # OUTBOUND_STREAM_MAX_BYTES = 2_000_000
    with sync_client(max_bytes=100 * MiB) as client:
        assert len(client.get(server.url("/bomb")).content) == 50 * MiB

    async def stream(**options):
        received = 0
        async with async_client(**options) as client, client.stream("GET", server.url("/bomb")) as response:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
        return received

    with pytest.raises(ResponseTooLarge):
        asyncio.run(stream())
    assert asyncio.run(stream(max_bytes=50 * MiB)) == 50 * MiB


def test_plain_bodies_are_capped_on_the_streaming_clients_too(server):
    server.routes["/big"] = respond(200, b"x" * 2_000_001)
    with sync_client() as client, pytest.raises(ResponseTooLarge):
        client.get(server.url("/big"))
    server.routes["/fits"] = respond(200, b"x" * 2_000_000)
    with sync_client() as client:
        assert len(client.get(server.url("/fits")).content) == 2_000_000


MEASURE = textwrap.dedent(
    """
    import asyncio, json, os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.test_settings"
    import django
    django.setup()
    from django.conf import settings
    from chatsite.lib import http
    url, path = sys.argv[1], sys.argv[2]
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_MAX_BYTES = 10 * 1024 * 1024
    settings.OUTBOUND_STREAM_MAX_BYTES = 10 * 1024 * 1024

    def status_kib(name):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(name + ":"))

    async def llm_stream():
        from assistants.answering.providers import ProviderConfig, provider_from_config
        provider = provider_from_config(
            ProviderConfig(kind="openai", base_url=url, api_key="", model="m", timeout=20, max_retries=0)
        )
        async for _ in provider.stream([{"role": "user", "content": "hi"}]):
            pass

    def run():
        if path == "fetch":
            http.fetch(url + "/bomb")
        elif path == "llm":
            asyncio.run(llm_stream())
        elif path == "client":
            with http.sync_client() as client:
                client.get(url + "/bomb")

    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the peak (VmHWM) restarts from the current RSS
    before = status_kib("VmRSS")
    try:
        run()
        outcome = "ok"
    except Exception as exc:
        outcome = type(exc).__name__
    print(json.dumps({"outcome": outcome, "growth_mib": (status_kib("VmHWM") - before) / 1024}))
    """
)


def measure(url: str, path: str) -> dict:
    """Peak RSS growth of a fresh process that takes one response from ``url`` by ``path``."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PYTHONPATH": str(django_settings.BASE_DIR),
    }
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, path],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=django_settings.BASE_DIR,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bomb_server():
    """Compression bombs: 512 MiB of zeros behind two gzip layers (under 1 KiB on the wire), and
    1 GiB behind one layer (about 1 MiB on the wire)."""
    stacked = stacked_gzip_bomb(512 * MiB)
    assert len(stacked) < 1024
    single = gzip_of_zeros(1024 * MiB)
    routes = {
        "/bomb": respond(200, stacked, {"Content-Encoding": "gzip, gzip"}),
        "/single": respond(200, single, {"Content-Encoding": "gzip"}),
        "/chat/completions": respond(
            200, stacked, {"Content-Encoding": "gzip, gzip", "Content-Type": "text/event-stream"}
        ),
    }
    srv = Server(routes=routes)
    yield srv
    srv.close()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["fetch", "client", "llm"])
def test_a_stacked_gzip_bomb_does_not_grow_the_process(bomb_server, path):
    """The issue's finding 2: ~1 KB of `gzip, gzip` used to grow the process by over 500 MiB."""
    result = measure(bomb_server.url(""), path)
    print(f"stacked gzip bomb ({path}): {result}")
    assert result["outcome"] in {"ResponseRefused", "ProviderError"}, result
    assert result["growth_mib"] < 8, result


@pytest.mark.slow
def test_a_single_layer_bomb_is_inflated_only_up_to_the_cap(bomb_server):
    """1 GiB of zeros in one gzip layer: decoded in pieces and refused at the 10 MiB cap, the
    process growing by about the cap (what fetch() holds) and not by the bomb."""
    bomb_server.routes["/bomb"] = bomb_server.routes["/single"]
    for path in ("fetch", "client"):
        result = measure(bomb_server.url(""), path)
        print(f"single-layer 1 GiB gzip bomb ({path}): {result}")
        assert result["outcome"] == "ResponseTooLarge", result
        assert result["growth_mib"] < 24, result


# --- Deadlines -------------------------------------------------------------------------------


def test_a_dripping_body_fails_at_the_deadline(server):
    server.routes["/drip"] = drip(interval=0.2, count=200)  # each byte well within the read timeout
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        fetch(server.url("/drip"), deadline=1.0)
    assert 0.9 < time.monotonic() - started < 2.0
    assert isinstance(DeadlineExceeded("x"), httpx.TimeoutException)


def test_dripping_headers_fail_at_the_deadline(server):
    server.routes["/drip"] = drip(interval=0.2, count=200, in_headers=True)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        fetch(server.url("/drip"), deadline=1.0)
    assert time.monotonic() - started < 2.0


def test_the_deadline_setting_is_the_default(server, strict_settings):
    strict_settings.OUTBOUND_DEADLINE = 0.8
    server.routes["/drip"] = drip(interval=0.2, count=200)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        fetch(server.url("/drip"))
    with pytest.raises(outbound.FetchFailed, match=r"^the page took longer than 0.8 s$"):
        fetch_or_fail(server.url("/drip"), subject="the page")
    assert time.monotonic() - started < 4.0


def test_the_deadline_covers_every_redirect_hop(server):
    server.routes["/slow-redirect"] = drip(interval=0.2, count=4, status=302, headers={"Location": "/drip"})
    server.routes["/drip"] = drip(interval=0.2, count=200)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        fetch(server.url("/slow-redirect"), deadline=1.2)
    assert time.monotonic() - started < 2.2


def test_a_fast_response_is_untouched_by_the_deadline(server):
    server.routes["/quick"] = drip(interval=0.05, count=5)
    assert fetch(server.url("/quick"), deadline=5).content == b"xxxxx"


def test_streaming_clients_have_a_deadline_per_request(server, strict_settings):
    server.routes["/drip"] = drip(interval=0.2, count=200)
    started = time.monotonic()
    with sync_client(deadline=0.8) as client, pytest.raises(DeadlineExceeded):
        client.get(server.url("/drip"))
    assert time.monotonic() - started < 1.8

    async def read(**options):
        async with async_client(**options) as client, client.stream("GET", server.url("/drip")) as response:
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        asyncio.run(read(deadline=0.8))
    assert time.monotonic() - started < 1.8
    strict_settings.OUTBOUND_DEADLINE = 0.6
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        asyncio.run(read())
    assert time.monotonic() - started < 1.6
