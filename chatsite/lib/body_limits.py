"""Request bodies refused before Django reads them (security finding 4).

Django's ASGI handler reads (and spools to disk) a whole body before any view runs, so a limit checked in
a view comes too late: anonymous 300 MiB bodies were stored before their 401, and a declared 2 GB upload
got no answer for 20 s. This ASGI middleware answers 413 at once when the declared ``Content-Length`` is
over the route's limit, and counts the bytes as they arrive otherwise (chunked bodies), stopping at the
limit:

* routes that take uploads (``settings.REQUEST_UPLOAD_PATHS``, regular expressions over the path):
  ``REQUEST_UPLOAD_MAX_BYTES``;
* every other route: ``REQUEST_MAX_BYTES``;
* a request with neither a session cookie nor an ``Authorization`` header (a visitor): at most
  ``REQUEST_ANONYMOUS_MAX_BYTES``, whatever the route, as nothing anonymous needs more than a question.
"""

from __future__ import annotations

import functools
import re

from django.conf import settings


class _TooLarge(Exception):
    pass


@functools.lru_cache(maxsize=4)
def _upload_paths(patterns: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns) or r"(?!)")


def _headers(scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


def body_limit(scope) -> int:
    """The most bytes of body the request may send."""
    path = scope.get("path", "")
    limit = (
        settings.REQUEST_UPLOAD_MAX_BYTES
        if _upload_paths(tuple(settings.REQUEST_UPLOAD_PATHS)).fullmatch(path)
        else settings.REQUEST_MAX_BYTES
    )
    headers = _headers(scope)
    session = f"{settings.SESSION_COOKIE_NAME}=".encode()
    signed_in = session in headers.get(b"cookie", b"") or b"authorization" in headers
    return limit if signed_in else min(limit, settings.REQUEST_ANONYMOUS_MAX_BYTES)


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope)
        declared = _headers(scope).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = True
            if too_large:
                return await _refuse(send, limit)
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send, limit: int) -> None:
    body = f'{{"error": {{"code": "payload_too_large", "message": "The body is larger than {limit} bytes.", "details": {{}}}}}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
