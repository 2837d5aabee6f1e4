"""Tests of the SSRF-safe outbound client against real HTTP servers on 127.0.0.1.

A "sentinel" server records every request it receives; a refused URL must leave it untouched.
Private addresses are refused by default here, so servers that a test must reach are put on the
operator allow-list by their exact "127.0.0.1:PORT".
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from chatsite.lib import http as outbound
from chatsite.lib.http import (
    METADATA,
    AsyncSafeTransport,
    FetchResult,
    OutboundRefused,
    ResponseTooLarge,
    SafeTransport,
    async_client,
    check_url,
    classify_address,
    fetch,
    sync_client,
)
from tests.servers import POLL_INTERVAL


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def respond(status: int = 200, body: bytes = b"ok", headers: dict | None = None):
    """A route that answers with a fixed response."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str, status: int = 302):
    return respond(status, b"", {"Location": location})


def stream_lines(handler: BaseHTTPRequestHandler) -> None:
    """A route that sends its body in pieces, without a length, then closes the connection."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Connection", "close")
    handler.end_headers()
    for i in range(3):
        handler.wfile.write(f"line {i}\n".encode())
        handler.wfile.flush()
    handler.close_connection = True


class Server:
    """A real HTTP(S) server on 127.0.0.1 that records requests and answers from ``routes``."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[Recorded] = []
        self.routes: dict = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                server.requests.append(Recorded(self.command, self.path, headers, body))
                server.routes.get(self.path, respond())(self)

            do_GET = do_POST = do_PUT = do_HEAD = handle_any

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.hostport = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(POLL_INTERVAL,))
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.hostport}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(autouse=True)
def strict_settings(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_TIMEOUT = 5.0
    settings.OUTBOUND_MAX_BYTES = 1_000_000
    settings.OUTBOUND_USER_AGENT = "TestBot/1.0"
    return settings


@pytest.fixture
def server(strict_settings):
    """An allow-listed server (reachable although private addresses are refused)."""
    srv = Server()
    strict_settings.OUTBOUND_ALLOWED_HOSTS = [srv.hostport]
    yield srv
    srv.close()


@pytest.fixture
def sentinel():
    """A server that nothing may reach: it is on 127.0.0.1 and not allow-listed."""
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def fake_dns(monkeypatch):
    """Replace the module's resolver with a table of names; counts the lookups per name."""
    table: dict[str, list[str]] = {}
    lookups: list[str] = []

    def resolve(host: str, port: int):
        lookups.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in table[host]]

    monkeypatch.setattr(outbound, "_resolve", resolve)
    return table, lookups


# --- Address classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address, expected",
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:2800:220:1::1", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:93.184.216.34", None),  # IPv4-mapped public address
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
        ("2002:5db8:d822::1", None),  # 6to4 of 93.184.216.34
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", METADATA),
        ("100.100.100.200", METADATA),
        ("fd00:ec2::254", METADATA),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "reserved"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.1", "reserved"),
        ("198.18.0.1", "reserved"),  # benchmarking
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", METADATA),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", METADATA),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::1", "NAT64 local-use"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("::7f00:1", "reserved"),  # deprecated IPv4-compatible
        ("2001::1", "reserved"),  # Teredo
        ("100::1", "reserved"),  # discard-only
    ],
)
def test_classify_address(address, expected):
    assert classify_address(address) == expected


# --- URL syntax ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher'"),
        ("ftp://example.org/file", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("//example.org/", "scheme ''"),
        ("http://a@b/", "credentials"),
        ("http://user:pass@example.org/", "credentials"),
        ("http://@example.org/", "credentials"),
        ("http://127.0.0.1:6666\\@example.org/", "credentials"),
        ("http://example.org\\.127.0.0.1/", "backslashes"),
        ("http:///path", "no host"),
        ("http://:80/", "no host"),
        ("http://0177.0.0.1/", "invalid URL"),
        ("http://127.0.0.1/", "address 127.0.0.1 is loopback"),
        ("http://127.1/", "address 127.0.0.1 is loopback"),
        ("http://2130706433/", "address 127.0.0.1 is loopback"),
        ("http://0x7f000001/", "address 127.0.0.1 is loopback"),
        ("http://[::ffff:7f00:1]/", "is loopback"),
        ("http://[::1]:8080/", "address ::1 is loopback"),
        ("http://localhost:8000/", "address 127.0.0.1 is loopback"),
        ("http://api.localhost/", "address 127.0.0.1 is loopback"),
        ("https://169.254.169.254/latest/meta-data/", METADATA),
        ("http://10.0.0.1/", "private"),
    ],
)
def test_check_url_refuses(url, reason):
    with pytest.raises(OutboundRefused) as info:
        check_url(url)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "url", ["https://example.org/a?b#c", "http://93.184.216.34:8080/", "http://[2606:2800:220:1::1]/"]
)
def test_check_url_accepts_public_urls(url):
    check_url(url)


def test_check_url_allow_private_keeps_scheme_and_credential_rules():
    check_url("http://127.0.0.1:8000/", allow_private=True)
    with pytest.raises(OutboundRefused, match="credentials"):
        check_url("http://user@127.0.0.1:8000/", allow_private=True)
    with pytest.raises(OutboundRefused, match="scheme"):
        check_url("file:///etc/passwd", allow_private=True)
    with pytest.raises(OutboundRefused, match="metadata"):
        check_url("http://169.254.169.254/", allow_private=True)


# --- Refusals never reach the sentinel -----------------------------------------------------

ODD_SPELLINGS = [
    # (URL template, reachable when private addresses are allowed)
    ("http://127.0.0.1:{port}/", True),
    ("http://127.1:{port}/", True),
    ("http://0177.0.0.1:{port}/", False),  # httpx refuses to parse octal; glibc would accept it
    ("http://2130706433:{port}/", True),
    ("http://0x7f000001:{port}/", True),
    ("http://0.0.0.0:{port}/", True),  # Linux connects 0.0.0.0 to the local host
    ("http://[::ffff:7f00:1]:{port}/", True),
    ("http://[::ffff:127.0.0.1]:{port}/", True),
    ("http://127.0.0.1.:{port}/", True),
    ("http://localhost:{port}/", False),  # may resolve to ::1 first, where the sentinel is not
    ("http://user@127.0.0.1:{port}/", False),
    ("http://127.0.0.1:{port}\\@example.org/", False),
]


@pytest.mark.parametrize("template, reachable", ODD_SPELLINGS)
def test_odd_spellings_of_loopback_are_refused(sentinel, template, reachable):
    url = template.format(port=sentinel.port)
    with pytest.raises(OutboundRefused):
        check_url(url)
    with pytest.raises(OutboundRefused):
        fetch(url)
    with pytest.raises((OutboundRefused, httpx.InvalidURL)), sync_client() as client:
        client.get(url)  # httpx itself rejects the URLs it cannot parse
    assert sentinel.requests == []


@pytest.mark.parametrize("template", [t for t, reachable in ODD_SPELLINGS if reachable])
def test_odd_spellings_do_reach_the_sentinel_when_private_is_allowed(sentinel, template):
    """The control: the refused spellings above really lead to the sentinel."""
    result = fetch(template.format(port=sentinel.port), allow_private=True)
    assert result.status_code == 200
    assert len(sentinel.requests) == 1


def test_names_resolving_to_private_addresses_are_refused(sentinel, fake_dns):
    table, _ = fake_dns
    table["loopback.test"] = ["127.0.0.1"]
    table["mixed.test"] = ["93.184.216.34", "127.0.0.1"]  # any bad address refuses the name
    table["v6.test"] = ["::ffff:127.0.0.1"]
    for name in table:
        url = f"http://{name}:{sentinel.port}/"
        check_url(url)  # no DNS at this stage
        with pytest.raises(OutboundRefused, match="is loopback"):
            fetch(url)
    assert sentinel.requests == []


def test_metadata_is_refused_even_when_private_is_allowed(sentinel, fake_dns):
    table, _ = fake_dns
    table["metadata.test"] = ["169.254.169.254"]
    with pytest.raises(OutboundRefused, match="metadata"):
        fetch(f"http://metadata.test:{sentinel.port}/", allow_private=True)


def test_unresolvable_name_is_a_connect_error(fake_dns):
    with pytest.raises(httpx.ConnectError, match="cannot resolve nowhere.test"):
        fetch("http://nowhere.test/")


# --- Allow-list and allow_private ----------------------------------------------------------


def test_allow_list_is_specific_to_host_and_port(server, sentinel):
    assert fetch(server.url("/")).status_code == 200
    with pytest.raises(OutboundRefused, match="loopback"):
        fetch(sentinel.url("/"))
    with pytest.raises(OutboundRefused, match="loopback"):
        fetch(f"http://localhost:{server.port}/")  # same port, other host name
    assert len(server.requests) == 1
    assert sentinel.requests == []


def test_allow_private_argument_and_setting(sentinel, strict_settings):
    assert fetch(sentinel.url(), allow_private=True).status_code == 200
    strict_settings.OUTBOUND_ALLOW_PRIVATE = True
    assert fetch(sentinel.url()).status_code == 200
    with pytest.raises(OutboundRefused):
        fetch(sentinel.url(), allow_private=False)
    assert len(sentinel.requests) == 2


# --- Connecting to the checked address (no DNS rebinding) ----------------------------------


def test_connection_goes_to_the_resolved_address_with_the_original_host(server, fake_dns, strict_settings, monkeypatch):
    table, lookups = fake_dns
    table["public.test"] = ["127.0.0.1"]
    url = f"http://public.test:{server.port}/hello"

    with pytest.raises(OutboundRefused, match="address 127.0.0.1 is loopback"):
        fetch(url)
    assert server.requests == []

    # No name may be looked up by anyone else (httpcore connects to the literal IP).
    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        ipaddress.ip_address(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    strict_settings.OUTBOUND_ALLOWED_HOSTS = [f"public.test:{server.port}"]
    lookups.clear()
    result = fetch(url)
    assert result.status_code == 200
    assert result.url == url
    assert lookups == ["public.test"]
    assert server.requests[0].headers["host"] == f"public.test:{server.port}"
    assert server.requests[0].path == "/hello"


def test_client_response_reports_the_requested_url_not_the_ip(server, fake_dns, strict_settings):
    table, _ = fake_dns
    table["public.test"] = ["127.0.0.1"]
    strict_settings.OUTBOUND_ALLOWED_HOSTS = [f"public.test:{server.port}"]
    with sync_client() as client:
        response = client.get(f"http://public.test:{server.port}/x")
    assert str(response.url) == f"http://public.test:{server.port}/x"


@pytest.fixture
def tls_names(tmp_path):
    """A TLS server whose certificate is valid for a.test only; records the SNI names it sees."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=a.test",
            "-addext",
            "subjectAltName=DNS:a.test",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    srv = Server(tls=context)
    yield srv, ssl.create_default_context(cafile=str(cert)), names
    srv.close()


def test_tls_uses_the_original_name_and_never_shares_a_connection_between_names(tls_names, fake_dns):
    srv, client_context, names = tls_names
    table, _ = fake_dns
    table["a.test"] = table["b.test"] = ["127.0.0.1"]
    transport = SafeTransport(allow_private=True, verify=client_context)
    with httpx.Client(transport=transport, trust_env=False) as client:
        assert client.get(f"https://a.test:{srv.port}/").status_code == 200
        assert client.get(f"https://a.test:{srv.port}/again").status_code == 200
        # b.test shares the IP and port, but the kept-alive a.test connection must not serve it.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            client.get(f"https://b.test:{srv.port}/")
    assert names[0] == "a.test"
    assert [r.path for r in srv.requests] == ["/", "/again"]
    assert srv.requests[0].headers["host"] == f"a.test:{srv.port}"


def test_async_tls_uses_the_original_name_and_never_shares_a_connection_between_names(tls_names, fake_dns):
    """The same through the asynchronous transport, whose sockets are the event loop's own
    (``chatsite.lib.sockets``: the handshake is ``loop.start_tls``)."""
    srv, client_context, names = tls_names
    table, _ = fake_dns
    table["a.test"] = table["b.test"] = ["127.0.0.1"]

    async def scenario():
        transport = AsyncSafeTransport(allow_private=True, verify=client_context)
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            first = await client.get(f"https://a.test:{srv.port}/")
            again = await client.get(f"https://a.test:{srv.port}/again")
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await client.get(f"https://b.test:{srv.port}/")
        return first.status_code, again.status_code

    assert asyncio.run(scenario()) == (200, 200)
    assert names[0] == "a.test"
    assert [r.path for r in srv.requests] == ["/", "/again"]


def test_async_tls_body_arrives_whole_while_reading_pauses_and_resumes(tls_names, fake_dns, monkeypatch):
    """Reading pauses and resumes on the TLS layer, not on the socket under it (which would stay paused)."""
    from chatsite.lib import sockets

    monkeypatch.setattr(sockets, "HIGH_WATER", 4096)
    monkeypatch.setattr(sockets, "LOW_WATER", 1024)
    srv, client_context, _ = tls_names
    table, _ = fake_dns
    table["a.test"] = ["127.0.0.1"]
    body = bytes(range(256)) * 4096  # 1 MiB
    srv.routes["/big"] = respond(body=body)

    async def scenario():
        transport = AsyncSafeTransport(allow_private=True, verify=client_context, max_bytes=len(body))
        received = bytearray()
        async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=5.0) as client:
            async with client.stream("GET", f"https://a.test:{srv.port}/big") as response:
                async for piece in response.aiter_raw():
                    received += piece
                    await asyncio.sleep(0.002)  # a slow reader: the buffer passes the high-water mark
        return bytes(received)

    assert asyncio.run(scenario()) == body


# --- Redirects -----------------------------------------------------------------------------


def test_redirect_to_a_private_address_is_refused(server, sentinel):
    server.routes["/go"] = redirect(sentinel.url("/secret"))
    with pytest.raises(OutboundRefused, match="loopback"):
        fetch(server.url("/go"))
    assert len(server.requests) == 1
    assert sentinel.requests == []


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1/", "http://u@example.org/"])
def test_redirect_to_a_refused_url_is_refused(server, location):
    server.routes["/go"] = redirect(location)
    with pytest.raises(OutboundRefused):
        fetch(server.url("/go"))


def test_redirect_chain_is_followed_and_recorded(server):
    server.routes["/one"] = redirect(server.url("/two"), 301)
    server.routes["/two"] = redirect("three", 307)  # relative to the current URL
    server.routes["/three"] = respond(200, b"done")
    result = fetch(server.url("/one"))
    assert isinstance(result, FetchResult)
    assert result.content == b"done"
    assert result.url == server.url("/three")
    assert result.redirects == [server.url("/one"), server.url("/two")]


def test_too_many_redirects(server):
    for i in range(10):
        server.routes[f"/{i}"] = redirect(f"/{i + 1}")
    assert fetch(server.url("/5")).redirects == [server.url(f"/{i}") for i in range(5, 10)]
    server.requests.clear()
    with pytest.raises(OutboundRefused, match="too many redirects"):
        fetch(server.url("/0"))
    assert len(server.requests) == 6
    with pytest.raises(OutboundRefused, match="too many redirects"):
        fetch(server.url("/8"), max_redirects=1)


def test_redirect_methods(server):
    server.routes["/see-other"] = redirect("/target", 303)
    server.routes["/temporary"] = redirect("/target", 307)
    server.routes["/found"] = redirect("/target", 302)
    fetch(server.url("/see-other"), method="POST", json={"a": 1})
    fetch(server.url("/temporary"), method="POST", data=b"raw")
    fetch(server.url("/found"), method="POST", data={"a": "1"})
    fetch(server.url("/found"), method="PUT", data={"a": "1"})
    seen = [(r.method, r.path, r.body) for r in server.requests]
    assert seen == [
        ("POST", "/see-other", b'{"a":1}'),
        ("GET", "/target", b""),
        ("POST", "/temporary", b"raw"),
        ("POST", "/target", b"raw"),
        ("POST", "/found", b"a=1"),
        ("GET", "/target", b""),
        ("PUT", "/found", b"a=1"),
        ("PUT", "/target", b"a=1"),
    ]


def test_credentials_are_dropped_when_a_redirect_changes_origin(server, strict_settings):
    other = Server()
    try:
        strict_settings.OUTBOUND_ALLOWED_HOSTS = [server.hostport, other.hostport]
        server.routes["/same"] = redirect("/next")
        server.routes["/away"] = redirect(other.url("/next"))
        fetch(server.url("/same"), headers={"Authorization": "Bearer s3cret"})
        fetch(server.url("/away"), headers={"Authorization": "Bearer s3cret"})
        assert server.requests[1].headers["authorization"] == "Bearer s3cret"
        assert "authorization" not in other.requests[0].headers
    finally:
        other.close()


# --- Responses -----------------------------------------------------------------------------


def test_byte_cap_applies_after_decompression(server):
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    server.routes["/bomb"] = respond(200, bomb, {"Content-Encoding": "gzip"})
    with pytest.raises(ResponseTooLarge):
        fetch(server.url("/bomb"), max_bytes=100_000)
    with pytest.raises(ResponseTooLarge):
        fetch(server.url("/bomb"))  # settings.OUTBOUND_MAX_BYTES = 1_000_000
    assert fetch(server.url("/bomb"), max_bytes=5_000_000).content == b"\0" * 5_000_000


def test_byte_cap_on_plain_bodies(server):
    server.routes["/big"] = respond(200, b"x" * 1000)
    assert len(fetch(server.url("/big"), max_bytes=1000).content) == 1000
    with pytest.raises(ResponseTooLarge):
        fetch(server.url("/big"), max_bytes=999)


def test_non_2xx_is_returned_and_user_agent_is_sent(server):
    server.routes["/missing"] = respond(404, b"nope")
    result = fetch(server.url("/missing"))
    assert (result.status_code, result.content, result.redirects) == (404, b"nope", [])
    assert server.requests[0].headers["user-agent"] == "TestBot/1.0"
    fetch(server.url("/"), headers={"User-Agent": "Custom/2"})
    assert server.requests[1].headers["user-agent"] == "Custom/2"


@pytest.mark.parametrize(
    "content_type, body, text",
    [
        ("text/html; charset=iso-8859-1", "café".encode("latin-1"), "café"),
        ("text/plain", "café".encode(), "café"),
        ("text/plain; charset=no-such-codec", b"caf\xe9", "caf\ufffd"),
        (None, b"\xff", "\ufffd"),
    ],
)
def test_text_decoding(content_type, body, text):
    headers = httpx.Headers({"content-type": content_type} if content_type else {})
    assert FetchResult("http://x/", 200, headers, body, []).text == text


def test_timeout_is_an_httpx_error(server):
    server.routes["/slow"] = lambda handler: threading.Event().wait(1)  # never answers
    with pytest.raises(httpx.TimeoutException):
        fetch(server.url("/slow"), timeout=0.2)


# --- Clients -------------------------------------------------------------------------------


def test_sync_client_checks_every_request_and_does_not_follow_redirects(server, sentinel):
    server.routes["/go"] = redirect(sentinel.url())
    with sync_client() as client:
        response = client.post(server.url("/api"), json={"q": "hi"})
        assert response.status_code == 200
        assert client.get(server.url("/go")).status_code == 302
        with pytest.raises(OutboundRefused, match="loopback"):
            client.get(sentinel.url())
    assert server.requests[0].body == b'{"q":"hi"}'
    assert server.requests[0].headers["user-agent"] == "TestBot/1.0"
    assert sentinel.requests == []


def test_sync_client_ignores_proxy_environment(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with sync_client() as client:
        assert client.get(server.url()).status_code == 200


def test_async_client_streams_from_an_allowed_server_and_refuses_private_ones(server, sentinel):
    server.routes["/stream"] = stream_lines
    server.routes["/go"] = redirect(sentinel.url())

    async def scenario():
        async with async_client(timeout=httpx.Timeout(5.0)) as client:
            async with client.stream("GET", server.url("/stream")) as response:
                lines = [line async for line in response.aiter_lines()]
            redirected = await client.get(server.url("/go"))
            with pytest.raises(OutboundRefused, match="loopback"):
                async with client.stream("POST", sentinel.url(), json={}):
                    pass
        return lines, redirected.status_code

    lines, status = asyncio.run(scenario())
    assert lines == ["line 0", "line 1", "line 2"]
    assert status == 302
    assert sentinel.requests == []


def test_async_client_pins_to_the_resolved_address(server, fake_dns, strict_settings):
    table, lookups = fake_dns
    table["public.test"] = ["127.0.0.1"]

    async def get(url):
        async with async_client() as client:
            return await client.get(url)

    url = f"http://public.test:{server.port}/async"
    with pytest.raises(OutboundRefused):
        asyncio.run(get(url))
    strict_settings.OUTBOUND_ALLOWED_HOSTS = [f"public.test:{server.port}"]
    response = asyncio.run(get(url))
    assert response.status_code == 200
    assert str(response.url) == url
    assert [r.headers["host"] for r in server.requests] == [f"public.test:{server.port}"]


def test_every_client_shares_one_tls_context():
    """Building a TLS context reads the whole CA bundle (tens of ms): a chat answer must not pay it."""
    from chatsite.lib.http import async_client, sync_client, tls_context

    contexts = {id(client._transport._pool._ssl_context) for client in (sync_client(), async_client(), async_client())}
    assert contexts == {id(tls_context())} and tls_context().verify_mode == ssl.CERT_REQUIRED


def test_fetch_or_fail_says_each_failure_in_words(server, sentinel):
    server.routes["/big"] = respond(body=b"x" * 5000)
    assert outbound.fetch_or_fail(server.url("/big"), subject="the file", max_bytes=5000).content == b"x" * 5000
    with pytest.raises(outbound.FetchFailed, match=r"^the file is larger than the 4 KB limit$"):
        outbound.fetch_or_fail(server.url("/big"), subject="the file", max_bytes=4096)
    with pytest.raises(outbound.FetchFailed, match=r"^the file may not be fetched: address 127.0.0.1 is loopback$"):
        outbound.fetch_or_fail(sentinel.url("/"), subject="the file")
    assert sentinel.requests == []
    closed = Server()
    closed.close()  # nothing listens on its port any more
    with pytest.raises(outbound.FetchFailed, match=r"^the file could not be reached \(ConnectError\)$"):
        outbound.fetch_or_fail(closed.url("/"), subject="the file", allow_private=True)
    assert (
        outbound.fetch_or_fail(server.url("/missing"), subject="the file").status_code == 200
    )  # statuses are returned
