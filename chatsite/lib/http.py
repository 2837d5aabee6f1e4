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

Rules for every response, on every path (:func:`fetch` and the clients alike; the safe transports
apply them, so no caller can forget them):

* at most one ``Content-Encoding`` layer, and only ``gzip`` / ``x-gzip`` / ``deflate`` (what the
  client asks for): ``gzip, gzip`` or ``br`` raises :class:`ResponseRefused`. The layer is decoded
  here, in pieces of at most ``DECODE_PIECE_BYTES``, and the decoded bytes are counted as they come:
  past the cap (``max_bytes``; ``settings.OUTBOUND_MAX_BYTES`` for :func:`fetch`,
  ``settings.OUTBOUND_STREAM_MAX_BYTES`` for the clients) :class:`ResponseTooLarge` is raised, so a
  compression bomb never inflates in memory beyond the cap. The bytes on the wire are capped too;
* a wall-clock deadline bounds each request from connecting to the last byte of its body, redirects
  included for :func:`fetch` (``deadline``; ``settings.OUTBOUND_DEADLINE`` by default): every socket
  operation waits at most until the deadline, so a server that drips one byte at a time fails with
  :class:`DeadlineExceeded` at the deadline, not after one read timeout per byte. Resolving the name
  is not covered (the system resolver has its own timeouts).

:class:`ResponseTooLarge` and :class:`ResponseRefused` subclass :class:`httpx.DecodingError`, and
:class:`DeadlineExceeded` subclasses :class:`httpx.TimeoutException`, so code that handles httpx's
errors handles them too.

Public API: :func:`check_destination` (a URL to be called later, checked with its DNS answer when
saved), :func:`fetch` (whole response, redirects followed and re-checked, body capped; and
:func:`fetch_or_fail`, its failures as one exception with a reason for people) and
:func:`sync_client` / :func:`async_client` (httpx clients for APIs and streaming, no redirects;
:data:`DEADLINE_AT` in a request's ``extensions`` sets that request's deadline, a
``time.monotonic()`` value).
Settings are read at call time, never at import time.
"""

from __future__ import annotations

import codecs
import contextvars
import email.message
import email.utils
import functools
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field

import anyio.to_thread
import httpcore
import httpx
from django.conf import settings

from chatsite.lib.sockets import AsyncioBackend

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

#: The encodings the client asks for and decodes (one layer at most); anything else is refused.
ACCEPT_ENCODING = "gzip, deflate"
_DECODABLE = {"gzip", "x-gzip", "deflate"}
#: Most bytes one decompression step may produce: a bomb is inflated this much at a time.
DECODE_PIECE_BYTES = 64 * 1024
#: Request extensions read by the safe transports: the request's deadline (a ``time.monotonic()``
#: value) and the most decoded bytes its response body may have.
DEADLINE_AT = "chatsite.deadline_at"
MAX_BYTES = "chatsite.max_bytes"
_OWN_EXTENSIONS = (DEADLINE_AT, MAX_BYTES)
#: The deadline of the request being sent or read in this thread or task, for the socket operations.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbound_deadline", default=None)


class OutboundRefused(Exception):
    """The URL or the address it resolves to may not be fetched; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ResponseTooLarge(httpx.DecodingError):
    """The response body grew past the allowed number of bytes (after decompression)."""


class ResponseRefused(httpx.DecodingError):
    """The response is in a form that is not accepted: more than one ``Content-Encoding`` layer, or
    an encoding that the client did not ask for."""


class DeadlineExceeded(httpx.TimeoutException):
    """The request (connection, headers and whole body; every redirect hop for :func:`fetch`) took
    longer than its wall-clock deadline."""


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


def check_destination(url: str, *, allow_private: bool | None = None) -> None:
    """:func:`check_url`, then the host resolved and every address it has checked, as a request would
    be: for a URL stored to be called later (a webhook endpoint), refused when it is saved. Raises
    :class:`OutboundRefused`, also when the name does not resolve. The request itself is checked again
    when it is made (the answer of the DNS may have changed)."""
    check_url(url, allow_private=allow_private)
    parsed = httpx.URL(url)
    host, port = _host(parsed), _port(parsed)
    if _ip_literal(host) is not None or _allow_listed(host, port):
        return
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        raise OutboundRefused(f"the host {host} could not be found") from None
    if not addresses:
        raise OutboundRefused(f"the host {host} could not be found")
    _refuse_addresses(host, port, addresses, allow_private)


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict | None = None,
    data=None,
    json=None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
    allow_private: bool | None = None,
    max_redirects: int = 5,
) -> FetchResult:
    """Fetch a URL completely, following and re-checking up to ``max_redirects`` redirects.

    Non-2xx statuses are returned. Raises :class:`OutboundRefused` (for the URL or any redirect
    hop), :class:`ResponseTooLarge` when the decoded body exceeds ``max_bytes`` (default
    ``settings.OUTBOUND_MAX_BYTES``), :class:`ResponseRefused` for a stacked or unknown
    ``Content-Encoding``, :class:`DeadlineExceeded` when the whole fetch, redirects included, takes
    longer than ``deadline`` seconds (default ``settings.OUTBOUND_DEADLINE``), or
    :class:`httpx.HTTPError` (timeouts of one operation, ``timeout``; connection errors).
    Credentials headers are dropped when a redirect leaves the original origin.
    """
    if max_bytes is None:
        max_bytes = settings.OUTBOUND_MAX_BYTES
    if deadline is None:
        deadline = settings.OUTBOUND_DEADLINE
    deadline_at = time.monotonic() + deadline
    extensions = {DEADLINE_AT: deadline_at, MAX_BYTES: max_bytes}
    headers = dict(headers or {})
    redirects: list[str] = []
    # httpx takes raw bodies as `content=`, and form fields as `data=`.
    body = {"content": data} if isinstance(data, (bytes, str)) else {"data": data}
    with sync_client(timeout=timeout, allow_private=allow_private) as client:
        while True:
            check_url(url, allow_private=allow_private)
            if time.monotonic() >= deadline_at:
                raise DeadlineExceeded(f"the fetch took longer than {deadline:g} s")
            with client.stream(method, url, headers=headers, json=json, extensions=extensions, **body) as response:
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
    """:func:`fetch`, with a refused address, a body over ``max_bytes``, a refused response, a fetch
    past its deadline and a request that got no answer all raised as :class:`FetchFailed`, whose
    reason starts with ``subject`` ("the address may not be fetched: loopback"). Non-2xx statuses
    are returned, as by :func:`fetch`."""
    limit = settings.OUTBOUND_MAX_BYTES if max_bytes is None else max_bytes
    try:
        return fetch(url, max_bytes=limit, **options)
    except OutboundRefused as exc:
        raise FetchFailed(f"{subject} may not be fetched: {exc.reason}") from exc
    except ResponseTooLarge as exc:
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        raise FetchFailed(f"{subject} is larger than the {size} limit") from exc
    except ResponseRefused as exc:
        raise FetchFailed(f"{subject} was refused: {exc}") from exc
    except DeadlineExceeded as exc:
        deadline = options.get("deadline")
        seconds = settings.OUTBOUND_DEADLINE if deadline is None else deadline
        raise FetchFailed(f"{subject} took longer than {seconds:g} s") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{subject} could not be reached ({type(exc).__name__})") from exc


def sync_client(
    *,
    timeout: float | httpx.Timeout | None = None,
    allow_private: bool | None = None,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> httpx.Client:
    """An httpx client whose every request is checked and pinned; redirects are not followed.

    Each request must be over, body included, within ``deadline`` seconds of being sent (default
    ``settings.OUTBOUND_DEADLINE``), and its decoded body may hold at most ``max_bytes`` (default
    ``settings.OUTBOUND_STREAM_MAX_BYTES``); see the module's rules for responses.
    """
    return httpx.Client(
        transport=SafeTransport(allow_private=allow_private, deadline=deadline, max_bytes=max_bytes),
        timeout=settings.OUTBOUND_TIMEOUT if timeout is None else timeout,
        headers={"User-Agent": settings.OUTBOUND_USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        follow_redirects=False,
        trust_env=False,
    )


def async_client(
    *,
    timeout: float | httpx.Timeout | None = None,
    allow_private: bool | None = None,
    deadline: float | None = None,
    max_bytes: int | None = None,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    """The asynchronous counterpart of :func:`sync_client` (for streaming LLM answers, say). ``limits``:
    the connections kept open at once and between requests, per host (httpx's default: 100 and 20)."""
    extra = {"limits": limits} if limits is not None else {}
    return httpx.AsyncClient(
        transport=AsyncSafeTransport(allow_private=allow_private, deadline=deadline, max_bytes=max_bytes, **extra),
        timeout=settings.OUTBOUND_TIMEOUT if timeout is None else timeout,
        headers={"User-Agent": settings.OUTBOUND_USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
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
    never be reused for another name that happens to share the IP. Every response is checked and
    guarded as the module docstring says (one encoding layer, decoded bytes capped, a deadline):
    ``deadline`` (seconds per request) and ``max_bytes`` apply where the request's extensions do not
    say otherwise (:data:`DEADLINE_AT`, :data:`MAX_BYTES`); None reads the settings at each request.
    Extra keyword arguments (``verify``, ``limits``...) are those of :class:`httpx.HTTPTransport`.
    """

    def __init__(
        self,
        *,
        allow_private: bool | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("verify", tls_context())
        super().__init__(**kwargs)
        _bound_by_deadline(self)
        self._allow_private = allow_private
        self._limits = (deadline, max_bytes)
        self._kwargs = kwargs
        self._tls_pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline_at, max_bytes = _request_limits(request, *self._limits)
        pinned = _pin(request, self._allow_private)
        if pinned.url.scheme != "https":
            send = super().handle_request
        else:
            with self._lock:
                pool = self._tls_pools.get(pinned.extensions["sni_hostname"])
                if pool is None:
                    pool = _bound_by_deadline(httpx.HTTPTransport(**self._kwargs))
                    self._tls_pools[pinned.extensions["sni_hostname"]] = pool
            send = pool.handle_request
        token = _deadline.set(deadline_at)
        try:
            response = send(pinned)
        except httpx.TimeoutException as exc:
            _raise_if_past(deadline_at, exc)
            raise
        finally:
            _deadline.reset(token)
        try:
            body = _Body(response.headers, max_bytes, deadline_at)
        except ResponseRefused:
            response.close()
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=body.headers,
            stream=_GuardedStream(response.stream, body),
            extensions=response.extensions,
        )

    def close(self) -> None:
        for pool in self._tls_pools.values():
            pool.close()
        super().close()


class AsyncSafeTransport(httpx.AsyncHTTPTransport):
    """The asynchronous counterpart of :class:`SafeTransport`; resolves names in a worker thread."""

    def __init__(
        self,
        *,
        allow_private: bool | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("verify", tls_context())
        super().__init__(**kwargs)
        _bound_by_deadline(self)
        self._allow_private = allow_private
        self._limits = (deadline, max_bytes)
        self._kwargs = kwargs
        self._tls_pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline_at, max_bytes = _request_limits(request, *self._limits)
        pinned = await anyio.to_thread.run_sync(_pin, request, self._allow_private)
        if pinned.url.scheme != "https":
            send = super().handle_async_request
        else:
            pool = self._tls_pools.get(pinned.extensions["sni_hostname"])
            if pool is None:
                pool = _bound_by_deadline(httpx.AsyncHTTPTransport(**self._kwargs))
                self._tls_pools[pinned.extensions["sni_hostname"]] = pool
            send = pool.handle_async_request
        token = _deadline.set(deadline_at)
        try:
            response = await send(pinned)
        except httpx.TimeoutException as exc:
            _raise_if_past(deadline_at, exc)
            raise
        finally:
            _deadline.reset(token)
        try:
            body = _Body(response.headers, max_bytes, deadline_at)
        except ResponseRefused:
            await response.aclose()
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=body.headers,
            stream=_AsyncGuardedStream(response.stream, body),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._tls_pools.values():
            await pool.aclose()
        await super().aclose()


# --- Response guards: one encoding layer, decoded in pieces, bytes capped, a deadline ---------------


def _request_limits(request: httpx.Request, deadline: float | None, max_bytes: int | None) -> tuple[float, int]:
    """The request's deadline (a ``time.monotonic()`` value) and its body's cap in decoded bytes."""
    deadline_at = request.extensions.get(DEADLINE_AT)
    if deadline_at is None:
        deadline_at = time.monotonic() + (settings.OUTBOUND_DEADLINE if deadline is None else deadline)
    limit = request.extensions.get(MAX_BYTES)
    if limit is None:
        limit = settings.OUTBOUND_STREAM_MAX_BYTES if max_bytes is None else max_bytes
    return deadline_at, limit


def _raise_if_past(deadline_at: float, exc: httpx.TimeoutException) -> None:
    """Raise :class:`DeadlineExceeded` for a timeout that the deadline caused (from ``exc``)."""
    if not isinstance(exc, DeadlineExceeded) and time.monotonic() >= deadline_at - 0.01:
        raise DeadlineExceeded("the request took longer than its deadline", request=exc._request) from exc


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` for one socket operation, cut to what is left before the current deadline."""
    deadline_at = _deadline.get()
    if deadline_at is None:
        return timeout
    left = deadline_at - time.monotonic()
    if left <= 0:
        raise error("the request took longer than its deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline of the request that uses it."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream):
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.AsyncNetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend):
        self._backend = backend

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(await self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _bound_by_deadline(transport):
    """``transport`` with its connection pool's sockets bound by the current request's deadline, and
    an asynchronous pool's on the event loop's own transports (``chatsite.lib.sockets``: anyio's
    costs on every read were a quarter of relaying a model's answer).

    httpx 0.28 takes no network backend, so its pool's is replaced in place (the tests of
    this module fail if a new httpx or httpcore moves it)."""
    pool = transport._pool
    if isinstance(pool, httpcore.AsyncConnectionPool):
        pool._network_backend = _AsyncDeadlineBackend(AsyncioBackend())
    else:
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport


class _Inflater:
    """One ``gzip`` or ``deflate`` layer, decoded ``DECODE_PIECE_BYTES`` at a time.

    ``deflate`` is zlib-wrapped by the standard, raw by some servers: both are read, as httpx does.
    Data after the end of the compressed stream is ignored (as httpx does).
    """

    def __init__(self, encoding: str):
        self._raw_deflate_fallback = encoding == "deflate"
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding != "deflate" else 0))

    def decode(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while pending and not self._inflater.eof:
            try:
                piece = self._inflater.decompress(pending, DECODE_PIECE_BYTES)
            except zlib.error as exc:
                if not self._raw_deflate_fallback:
                    raise httpx.DecodingError(f"invalid compressed data: {exc}") from None
                self._raw_deflate_fallback = False
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_fallback = False
            pending = self._inflater.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave output inside zlib although all input was taken: ask again.
            while not pending and len(piece) == DECODE_PIECE_BYTES and not self._inflater.eof:
                piece = self._inflater.decompress(b"", DECODE_PIECE_BYTES)
                if piece:
                    yield piece


class _Body:
    """The checks of one response body: its encoding (at most one layer, a known one), its size
    before and after decoding, and its deadline. ``headers`` are those given to httpx: without
    ``Content-Encoding``, since the body is decoded here and must not be decoded again."""

    def __init__(self, headers: httpx.Headers, max_bytes: int, deadline_at: float):
        layers = [
            value.strip().lower()
            for value in headers.get_list("content-encoding", split_commas=True)
            if value.strip().lower() not in ("", "identity")
        ]
        if len(layers) > 1:
            raise ResponseRefused(
                f"the response has {len(layers)} content encodings ({', '.join(layers)}); at most one is accepted"
            )
        if layers and layers[0] not in _DECODABLE:
            raise ResponseRefused(f"the response has an unknown content encoding ({layers[0][:40]!r})")
        self.inflater = _Inflater(layers[0]) if layers else None
        self.headers = [(name, value) for name, value in headers.raw if name.lower() != b"content-encoding"]
        self.max_bytes = max_bytes
        # Compressed data can be larger than what it decodes to (deflate adds a few bytes per 16 KiB).
        self.max_wire_bytes = max_bytes + max_bytes // 100 + 1024
        self.deadline_at = deadline_at
        self.wire_bytes = self.decoded_bytes = 0

    def check_deadline(self) -> None:
        if time.monotonic() >= self.deadline_at:
            raise DeadlineExceeded("the response took longer than its deadline")

    def decode(self, data: bytes) -> Iterator[bytes]:
        self.wire_bytes += len(data)
        if self.wire_bytes > self.max_wire_bytes:
            raise ResponseTooLarge(f"response body exceeds {self.max_bytes} bytes")
        for piece in self.inflater.decode(data) if self.inflater else (data,):
            self.decoded_bytes += len(piece)
            if self.decoded_bytes > self.max_bytes:
                raise ResponseTooLarge(f"response body exceeds {self.max_bytes} bytes")
            yield piece


class _GuardedStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], body: _Body):
        self._stream = stream
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._stream)
        while True:
            self._body.check_deadline()
            token = _deadline.set(self._body.deadline_at)
            try:
                data = next(chunks, None)
            except httpx.TimeoutException as exc:
                _raise_if_past(self._body.deadline_at, exc)
                raise
            finally:
                _deadline.reset(token)
            if data is None:
                return
            yield from self._body.decode(data)

    def close(self) -> None:
        self._stream.close()


class _AsyncGuardedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, body: _Body):
        self._stream = stream
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._stream)
        while True:
            self._body.check_deadline()
            token = _deadline.set(self._body.deadline_at)
            try:
                data = await anext(chunks, None)
            except httpx.TimeoutException as exc:
                _raise_if_past(self._body.deadline_at, exc)
                raise
            finally:
                _deadline.reset(token)
            if data is None:
                return
            for piece in self._body.decode(data):
                yield piece

    async def aclose(self) -> None:
        await self._stream.aclose()


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
        extensions={
            **{key: value for key, value in request.extensions.items() if key not in _OWN_EXTENSIONS},
            "sni_hostname": host,
        },
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
