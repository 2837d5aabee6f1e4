"""What every API view shares: authentication, scopes, rate limits, JSON bodies, idempotent
creates, and the one error shape ``{"error": {"code", "message", "details"}}``.

A view is a function decorated with :func:`api_view`, which names the method it answers and the
scope it needs; :func:`route` joins the views of one URL and answers other methods with 405.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from inspect import iscoroutinefunction

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from assistants.api.keys import api_key_authenticate
from chatsite.lib import json_body
from chatsite.lib.shared_redis import redis_client

MAX_BODY_BYTES = 1024 * 1024
RATE_WINDOW_SECONDS = 60
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY_LOCK_SECONDS = 60  # how long a crashed first attempt blocks its retries
BODY_METHODS = {"POST", "PATCH", "PUT"}


class ApiError(Exception):
    """A refusal the client can act on; views raise it, :func:`api_view` answers with it."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return JsonResponse(body, status=self.status, headers=self.headers)


def not_found(what: str) -> ApiError:
    """Missing and another team's objects read the same: a 404 that tells nothing about either."""
    return ApiError(404, "not_found", f"No such {what}.")


def invalid(message: str, details: dict | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, details)


def fields_invalid(details: dict[str, list[str]]) -> ApiError:
    """Body fields that failed validation: ``{"field": ["why", ...]}``."""
    return ApiError(400, "validation_failed", "Some fields are invalid.", details)


def _authenticate(request: HttpRequest):
    scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
    key = api_key_authenticate(raw_key=raw_key.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "Send a valid API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    return key


def _rate_limit(key) -> None:
    """A fixed window per key: at most API_RATE_LIMIT_PER_MINUTE requests each minute."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    now = time.time()
    # The key's hash, not its id: ids come back when a test database is recreated, hashes do not.
    counter = f"api:rate:{key.key_hash}:{int(now // RATE_WINDOW_SECONDS)}"
    pipe = redis_client().pipeline()
    pipe.incr(counter)
    pipe.expire(counter, RATE_WINDOW_SECONDS * 2)
    count, _ = pipe.execute()
    if count > limit:
        retry_after = max(1, RATE_WINDOW_SECONDS - int(now % RATE_WINDOW_SECONDS))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests: this key may make {limit} per minute.",
            {"limit": limit, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def _json_body(request: HttpRequest) -> dict:
    if request.method not in BODY_METHODS:
        return {}
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    try:
        too_large = declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES
    except RequestDataTooBig:  # over Django's own DATA_UPLOAD_MAX_MEMORY_SIZE
        too_large = True
    if too_large:
        raise ApiError(413, "payload_too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not request.body:
        return {}
    if request.content_type != "application/json":
        raise invalid("Send the body as JSON (Content-Type: application/json).")
    try:
        payload = json_body.loads(request.body)
    except ValueError as exc:
        raise invalid(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise invalid("The body must be a JSON object.")
    return payload


def upload_limit_bytes() -> int:
    """The largest multipart body accepted: API_UPLOAD_MAX_FILES files of UPLOAD_MAX_BYTES, plus 1 MiB of form."""
    return settings.API_UPLOAD_MAX_FILES * settings.UPLOAD_MAX_BYTES + MAX_BODY_BYTES


def _files_body(request: HttpRequest) -> dict:
    """A ``multipart/form-data`` body: refused with 413 by its declared size before Django reads it.

    Django streams the parts into temporary files, so a large upload is never held in memory.
    """
    if request.content_type != "multipart/form-data":
        raise invalid("Send the files as multipart/form-data (one or more 'file' parts).")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > upload_limit_bytes():
        raise ApiError(
            413,
            "payload_too_large",
            f"The upload is larger than {upload_limit_bytes()} bytes.",
            {"max_file_bytes": settings.UPLOAD_MAX_BYTES, "max_files": settings.API_UPLOAD_MAX_FILES},
        )
    try:
        request.FILES  # noqa: B018 -- parse now, so that a malformed body is this request's 400
    except (RequestDataTooBig, ValueError) as exc:
        raise invalid(f"The multipart body cannot be read: {exc}.") from None
    return {}


def _admit(request: HttpRequest, scope: str | None, body: str = "json") -> None:
    """Authenticate, count, check the scope, parse the body; sets request.api_key and request.json.

    A view without a scope is public (the API's own description): it takes no key and no body.
    ``body="files"`` views take a multipart upload instead of JSON (``request.FILES``).
    """
    if scope is None:
        return
    key = _authenticate(request)
    _rate_limit(key)
    if scope not in key.scopes:
        raise ApiError(
            403,
            "insufficient_scope",
            f"This key lacks the '{scope}' scope.",
            {"required": scope, "granted": key.scopes},
        )
    request.api_key = key
    request.json = _files_body(request) if body == "files" else _json_body(request)


def _idempotent(request: HttpRequest, respond: Callable[[], HttpResponse]) -> HttpResponse:
    """Answer a retried create (same key, same Idempotency-Key) with the first response, creating nothing.

    The first attempt holds a short lock; a retry arriving meanwhile gets 409. Only successful
    responses are kept (24 h); after a refusal the same Idempotency-Key may be used again.
    """
    idempotency_key = request.headers["Idempotency-Key"]
    if len(idempotency_key) > 255:
        raise invalid("The Idempotency-Key header is longer than 255 characters.")
    name = f"api:idempotency:{request.api_key.key_hash}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n".encode() + request.body).hexdigest()
    store = redis_client()
    pending = json.dumps({"state": "pending", "fingerprint": fingerprint})
    if not store.set(name, pending, nx=True, ex=IDEMPOTENCY_LOCK_SECONDS):
        first = json.loads(store.get(name) or "null")
        if first is None or first["state"] == "pending":
            raise ApiError(
                409, "idempotency_in_progress", "A request with this Idempotency-Key is still running; retry later."
            )
        if first["fingerprint"] != fingerprint:
            raise invalid("This Idempotency-Key was used for a different request.", {"header": "Idempotency-Key"})
        return JsonResponse(first["body"], status=first["status"], headers={"Idempotent-Replayed": "true"})
    try:
        response = respond()
    except BaseException:
        store.delete(name)
        raise
    if 200 <= response.status_code < 300:
        done = {
            "state": "done",
            "fingerprint": fingerprint,
            "status": response.status_code,
            "body": json.loads(response.content),
        }
        store.set(name, json.dumps(done), ex=IDEMPOTENCY_TTL_SECONDS)
    else:
        store.delete(name)
    return response


def api_view(*, scope: str | None, methods: list[str], idempotent: bool = False, body: str = "json"):
    """Make ``handler(request, **url_kwargs)`` an API view answering ``methods`` with key ``scope``.

    The handler finds ``request.api_key`` (its team scopes every read) and ``request.json``, raises
    :class:`ApiError` to refuse, and may be async (then it cannot be idempotent). With
    ``idempotent``, an ``Idempotency-Key`` header makes retries safe (see :func:`_idempotent`).
    """

    def decorate(handler):
        if iscoroutinefunction(handler):
            if idempotent:
                raise TypeError("idempotent views must be synchronous")

            @functools.wraps(handler)
            async def view(request, **kwargs):
                try:
                    await sync_to_async(_admit)(request, scope)
                    return await handler(request, **kwargs)
                except ApiError as exc:
                    return exc.response()

        else:

            @functools.wraps(handler)
            def view(request, **kwargs):
                try:
                    _admit(request, scope, body)
                    if idempotent and "Idempotency-Key" in request.headers:
                        return _idempotent(request, lambda: handler(request, **kwargs))
                    return handler(request, **kwargs)
                except ApiError as exc:
                    return exc.response()

        view.api_methods = [method.upper() for method in methods]
        return view

    return decorate


def route(*views):
    """One URL's view: each request goes to the view that answers its method, else 405."""
    by_method = {method: view for view in views for method in view.api_methods}
    allowed = sorted(by_method)

    def method_not_allowed(request) -> JsonResponse:
        return ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here.",
            {"allowed": allowed},
            headers={"Allow": ", ".join(allowed)},
        ).response()

    if all(iscoroutinefunction(view) for view in views):

        async def dispatch(request, **kwargs):
            view = by_method.get(request.method)
            return await view(request, **kwargs) if view else method_not_allowed(request)

    elif not any(iscoroutinefunction(view) for view in views):

        def dispatch(request, **kwargs):
            view = by_method.get(request.method)
            return view(request, **kwargs) if view else method_not_allowed(request)

    else:
        raise TypeError("the views of one route must be all sync or all async")
    dispatch.api_methods = allowed  # read by the OpenAPI contract test
    return csrf_exempt(dispatch)  # no cookies: a key in a header is not sent by a cross-site form


@csrf_exempt
def path_not_found(request, **kwargs) -> JsonResponse:
    """Any other path under the API (``/assistants/-1``, a typo) is a 404 in the one error shape, not HTML."""
    return ApiError(404, "not_found", f"No such path: {request.path}.").response()


path_not_found.api_methods = []  # answers no method of its own: the contract test documents none
