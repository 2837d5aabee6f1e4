"""Who is asking: the client's address and scheme, read from proxy headers only when the connection
comes from a proxy the operator trusts (``settings.TRUSTED_PROXIES``: addresses or networks).

Without trusted proxies, ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are ignored (and removed, so
nothing later reads them): anyone can send them, and a rate limit keyed on a forged address is no
limit at all. Behind trusted proxies, the client is the right-most address of ``X-Forwarded-For`` that
is not itself a trusted proxy. uvicorn runs with ``--no-proxy-headers`` so that this is the one place
that decides.
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def forwarded_client(peer: str, forwarded_for: str) -> str:
    """The client address for a request from ``peer`` carrying ``X-Forwarded-For: forwarded_for``."""
    if not forwarded_for or not is_trusted_proxy(peer):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            return peer  # a garbled chain: trust nothing of it
        if not is_trusted_proxy(hop):
            return hop.strip("[]")
    return peer


class ClientAddressMiddleware:
    """First in the chain: REMOTE_ADDR becomes the real client; forwarded headers from anyone but a
    trusted proxy are dropped before Django (``SECURE_PROXY_SSL_HEADER``) or a view can read them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        peer = meta.get("REMOTE_ADDR", "")
        if is_trusted_proxy(peer):
            meta["REMOTE_ADDR"] = forwarded_client(peer, meta.get("HTTP_X_FORWARDED_FOR", ""))
        else:
            for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED"):
                meta.pop(header, None)
        return self.get_response(request)


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"
