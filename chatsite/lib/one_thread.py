"""The middleware chain runs in one thread per request (``OneThreadMiddleware``, last in MIDDLEWARE).

Under ASGI, Django runs an async-capable middleware in async mode when what it wraps is async, and
Django's own middleware (``MiddlewareMixin``: security, sessions, CSRF, authentication, messages…)
then calls each of its ``process_request`` and ``process_response`` hooks through ``sync_to_async``:
a trip to the request's thread and back for each, about a dozen a request. WhiteNoise and this
project's first middleware are synchronous, so the request's thread exists anyway. This middleware,
synchronous and innermost, makes every middleware above it run in that thread in plain synchronous
calls; only the view is reached across the boundary, once (``async_to_sync``), and an async view (the
chat's streams) still runs on the event loop and streams from there. Measured with a request the chat
view refuses at once, 3,000 at 30 at once against one uvicorn process (docs/benchmarks.md): 3.96 and
4.11 ms of the process's CPU a request before, 3.20 and 2.97 after.
"""

from __future__ import annotations


class OneThreadMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
