"""The one outbound HTTP client of the product, safe against server-side request forgery.

Every request that leaves the server (crawler, sitemaps, robots.txt, documents by URL, LLM
providers, embedding APIs, webhooks) goes through this module, because the URLs often come from
people who should not be able to reach the machine's own network through us.

Rules, applied to every request and to every redirect hop:

* only ``http`` and ``https``; no credentials (``user@``) or backslashes in the authority; a host
  is required;
* the host name is resolved once, and the request is refused if ANY of its addresses is not a
  public one (see :func:`classify_address`), unless private addresses are allowed
  (``allow_private`` / ``settings.OUTBOUND_ALLOW_PRIVATE``) or the exact ``host:port`` is in
  ``settings.OUTBOUND_ALLOWED_HOSTS``. Cloud metadata endpoints stay refused even when private
  addresses are allowed; only the allow-list opens them;
* the connection goes to exactly the address that was checked: the transport rewrites the request
  URL to that IP and keeps the original name in the ``Host`` header and in the TLS SNI / certificate
  check (``sni_hostname``), so a second DNS answer (DNS rebinding) is never used;
* proxies from the environment are ignored (``trust_env=False``), as they would bypass the checks.

Public API: :func:`fetch` (whole response, redirects followed and re-checked, body capped; and
:func:`fetch_or_fail`, its failures as one exception with a reason for people) and
:func:`sync_client` / :func:`async_client` (httpx clients for APIs and streaming, no redirects).
Settings are read at call time, never at import time.
"""

from __future__ import annotations

import codecs
import email.message
import email.utils
import functools
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import anyio.to_thread
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = "a cloud metadata endpoint"

# Ordered: the first network that contains the address gives its label.
_V4_BLOCKS = [
    (ipaddress.ip_network(net), label)
    for net, label in [
        ("169.254.169.254/32", METADATA),
        ("100.100.100.200/32", METADATA),
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "reserved"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("169.254.0.0/16", "link-local"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ]
]
_V6_BLOCKS = [
    (ipaddress.ip_network(net), label)
    for net, label in [
        ("fd00:ec2::254/128", METADATA),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "NAT64 local-use"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("fc00::/7", "unique-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("::/8", "reserved"),
        ("100::/64", "reserved"),
    ]
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}


class OutboundRefused(Exception):
    """The URL or the address it resolves to may not be fetched; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ResponseTooLarge(Exception):
    """The response body grew past the allowed number of bytes (after decompression)."""


@dataclass
class FetchResult:
    """A complete response from :func:`fetch`."""

    url: str  # final URL, after redirects
    status_code: int
    headers: httpx.Headers
    content: bytes
    redirects: list[str] = field(default_factory=list)  # URLs visited before the final one

    @property
    def text(self) -> str:
        """The body decoded with the charset of the Content-Type header, else UTF-8 (lossy)."""
        message = email.message.Message()
        message["content-type"] = self.headers.get("content-type", "")
        charset = message.get_content_charset() or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return self.content.decode(charset, errors="replace")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(seconds, 0.0)


def classify_address(address: str | IPAddress) -> str | None:
    """Why an address must not be contacted (e.g. ``"loopback"``), or None for a public address.

    IPv6 addresses that embed an IPv4 address (IPv4-mapped, NAT64 well-known prefix, 6to4) are
    judged by the embedded address.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return classify_address(embedded)
    blocks = _V4_BLOCKS if ip.version == 4 else _V6_BLOCKS
    for network, label in blocks:
        if ip in network:
            return label
    if not ip.is_global:
        return "reserved"
    return None


def check_url(url: str, *, allow_private: bool | None = None) -> None:
    """Refuse a URL on its syntax alone: scheme, credentials, missing host, private IP literals.

    No DNS lookup is made, so a name that resolves to a private address passes here; the transport
    refuses it when the request is made. Numeric hosts are read the way the system resolver
    reads them (``127.1``, ``2130706433``, ``0x7f000001`` all mean 127.0.0.1).
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise OutboundRefused(f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise OutboundRefused(f"scheme {parsed.scheme!r} is not allowed")
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority or parsed.userinfo:
        raise OutboundRefused("credentials in URLs are not allowed")
    if "\\" in authority:
        raise OutboundRefused("backslashes in the host part are not allowed")
    host = _host(parsed)
    if not host:
        raise OutboundRefused("the URL has no host")
    port = _port(parsed)
    if host == "localhost" or host.endswith(".localhost"):
        _refuse_addresses(host, port, [ipaddress.IPv4Address("127.0.0.1")], allow_private)
    literal = _ip_literal(host)
    if literal is not None:
        _refuse_addresses(host, port, [literal], allow_private)


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict | None = None,
    data=None,
    json=None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    allow_private: bool | None = None,
    max_redirects: int = 5,
) -> FetchResult:
    """Fetch a URL completely, following and re-checking up to ``max_redirects`` redirects.

    Non-2xx statuses are returned. Raises :class:`OutboundRefused` (for the URL or any redirect
    hop), :class:`ResponseTooLarge` when the decoded body exceeds ``max_bytes`` (default
    ``settings.OUTBOUND_MAX_BYTES``), or :class:`httpx.HTTPError` (timeouts, connection errors).
    Credentials headers are dropped when a redirect leaves the original origin.
    """
    if max_bytes is None:
        max_bytes = settings.OUTBOUND_MAX_BYTES
    headers = dict(headers or {})
    redirects: list[str] = []
    # httpx takes raw bodies as `content=`, and form fields as `data=`.
    body = {"content": data} if isinstance(data, (bytes, str)) else {"data": data}
    with sync_client(timeout=timeout, allow_private=allow_private) as client:
        while True:
            check_url(url, allow_private=allow_private)
            with client.stream(method, url, headers=headers, json=json, **body) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECT_STATUSES and location:
                    if len(redirects) >= max_redirects:
                        raise OutboundRefused("too many redirects")
                    redirects.append(url)
                    next_url = _join(url, location)
                    if _origin(next_url) != _origin(url):
                        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                    if (response.status_code == 303 and method != "HEAD") or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, body, json = "GET", {}, None
                    url = next_url
                    continue
                content = _read_capped(response, max_bytes)
                return FetchResult(
                    url=url,
                    status_code=response.status_code,
                    headers=response.headers,
                    content=content,
                    redirects=redirects,
                )


class FetchFailed(Exception):
    """:func:`fetch_or_fail` could not get an answer; ``reason`` is a sentence about the subject."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def fetch_or_fail(url: str, *, subject: str, max_bytes: int | None = None, **options) -> FetchResult:
    """:func:`fetch`, with a refused address, a body over ``max_bytes`` and a request that got no
    answer all raised as :class:`FetchFailed`, whose reason starts with ``subject`` ("the address may
    not be fetched: loopback"). Non-2xx statuses are returned, as by :func:`fetch`."""
    limit = settings.OUTBOUND_MAX_BYTES if max_bytes is None else max_bytes
    try:
        return fetch(url, max_bytes=limit, **options)
    except OutboundRefused as exc:
        raise FetchFailed(f"{subject} may not be fetched: {exc.reason}") from exc
    except ResponseTooLarge as exc:
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        raise FetchFailed(f"{subject} is larger than the {size} limit") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{subject} could not be reached ({type(exc).__name__})") from exc


def sync_client(*, timeout: float | None = None, allow_private: bool | None = None) -> httpx.Client:
    """An httpx client whose every request is checked and pinned; redirects are not followed."""
    return httpx.Client(
        transport=SafeTransport(allow_private=allow_private),
        timeout=settings.OUTBOUND_TIMEOUT if timeout is None else timeout,
        headers={"User-Agent": settings.OUTBOUND_USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


def async_client(
    *, timeout: float | httpx.Timeout | None = None, allow_private: bool | None = None
) -> httpx.AsyncClient:
    """The asynchronous counterpart of :func:`sync_client` (for streaming LLM answers, say)."""
    return httpx.AsyncClient(
        transport=AsyncSafeTransport(allow_private=allow_private),
        timeout=settings.OUTBOUND_TIMEOUT if timeout is None else timeout,
        headers={"User-Agent": settings.OUTBOUND_USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (certifi's roots), shared by every transport and pool:
    building one reads the whole CA bundle (~20 ms), which a chat answer must not pay each time."""
    return httpx.create_ssl_context()


class SafeTransport(httpx.HTTPTransport):
    """An HTTP transport that checks every request and connects to the checked address only.

    Plain-HTTP requests go through this transport's own pool, keyed by the pinned IP. HTTPS
    requests go through one pool per server name: a TLS connection verified for one name must
    never be reused for another name that happens to share the IP.
    Extra keyword arguments (``verify``, ``limits``...) are those of :class:`httpx.HTTPTransport`.
    """

    def __init__(self, *, allow_private: bool | None = None, **kwargs):
        kwargs.setdefault("verify", tls_context())
        super().__init__(**kwargs)
        self._allow_private = allow_private
        self._kwargs = kwargs
        self._tls_pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pinned = _pin(request, self._allow_private)
        if pinned.url.scheme != "https":
            return super().handle_request(pinned)
        with self._lock:
            pool = self._tls_pools.get(pinned.extensions["sni_hostname"])
            if pool is None:
                pool = httpx.HTTPTransport(**self._kwargs)
                self._tls_pools[pinned.extensions["sni_hostname"]] = pool
        return pool.handle_request(pinned)

    def close(self) -> None:
        for pool in self._tls_pools.values():
            pool.close()
        super().close()


class AsyncSafeTransport(httpx.AsyncHTTPTransport):
    """The asynchronous counterpart of :class:`SafeTransport`; resolves names in a worker thread."""

    def __init__(self, *, allow_private: bool | None = None, **kwargs):
        kwargs.setdefault("verify", tls_context())
        super().__init__(**kwargs)
        self._allow_private = allow_private
        self._kwargs = kwargs
        self._tls_pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pinned = await anyio.to_thread.run_sync(_pin, request, self._allow_private)
        if pinned.url.scheme != "https":
            return await super().handle_async_request(pinned)
        pool = self._tls_pools.get(pinned.extensions["sni_hostname"])
        if pool is None:
            pool = httpx.AsyncHTTPTransport(**self._kwargs)
            self._tls_pools[pinned.extensions["sni_hostname"]] = pool
        return await pool.handle_async_request(pinned)

    async def aclose(self) -> None:
        for pool in self._tls_pools.values():
            await pool.aclose()
        await super().aclose()


def _resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host`` (tests replace this function to simulate DNS answers)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _pin(request: httpx.Request, allow_private: bool | None) -> httpx.Request:
    """Check the request, resolve its host once, and return a copy aimed at the checked IP.

    The original request is left untouched, so responses keep reporting the URL that was asked
    for; the copy carries the original ``Host`` header and the name for TLS (``sni_hostname``).
    """
    check_url(str(request.url), allow_private=allow_private)
    host, port = _host(request.url), _port(request.url)
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
    if not addresses:
        raise httpx.ConnectError(f"cannot resolve {host}: no addresses", request=request)
    _refuse_addresses(host, port, addresses, allow_private)
    return httpx.Request(
        request.method,
        request.url.copy_with(host=str(addresses[0])),
        headers=request.headers,
        stream=request.stream,
        extensions={**request.extensions, "sni_hostname": host},
    )


def _refuse_addresses(host: str, port: int, addresses: list[IPAddress], allow_private: bool | None) -> None:
    """Raise OutboundRefused unless every address of ``host:port`` may be contacted."""
    if _allow_listed(host, port):
        return
    if allow_private is None:
        allow_private = settings.OUTBOUND_ALLOW_PRIVATE
    for ip in addresses:
        label = classify_address(ip)
        if label is not None and (label == METADATA or not allow_private):
            raise OutboundRefused(f"address {ip} is {label}")


def _allow_listed(host: str, port: int) -> bool:
    """Whether ``host:port`` is one of the operator's ``OUTBOUND_ALLOWED_HOSTS`` entries."""
    for entry in settings.OUTBOUND_ALLOWED_HOSTS:
        entry_host, _, entry_port = entry.strip().rpartition(":")
        if entry_port.isdigit() and int(entry_port) == port and entry_host.strip("[]").lower() == host:
            return True
    return False


def _host(url: httpx.URL) -> str:
    """The URL's host as the resolver sees it: ASCII (IDNA), lower case, no brackets or final dot."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _origin(url: str) -> tuple[str, str, int]:
    parsed = httpx.URL(url)
    return parsed.scheme, _host(parsed), _port(parsed)


def _ip_literal(host: str) -> IPAddress | None:
    """The address a numeric host stands for, in every spelling the C resolver accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _join(base: str, location: str) -> str:
    try:
        return str(httpx.URL(base).join(location))
    except httpx.InvalidURL as exc:
        raise OutboundRefused(f"invalid redirect location: {exc}") from None


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, refusing to hold more than ``max_bytes`` of it."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"response body exceeds {max_bytes} bytes")
    return bytes(body)
