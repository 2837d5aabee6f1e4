"""The database out of reach is a 503, not a 500 (``DatabaseUnavailableMiddleware``).

A request that cannot get a connection — the process's pool exhausted for ``DATABASE_POOL_TIMEOUT``
seconds, or the server restarting or down — is answered ``503 Service Unavailable`` with ``Retry-After``,
so that clients and load balancers retry instead of reporting a failure; web processes and workers
reconnect by themselves once the server is back (the pool checks each connection it lends).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable for %s: %s", request.path, exception)
        return unavailable_response()


def unavailable_response() -> JsonResponse:
    """503 with Retry-After, in the API's error shape (the API's own error handlers answer with it too)."""
    response = JsonResponse(
        {
            "error": {
                "code": "unavailable",
                "message": "The service is busy or restarting. Please try again in a few seconds.",
                "details": {"retry_after": RETRY_AFTER_SECONDS},
            }
        },
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
