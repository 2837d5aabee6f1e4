"""What every API operation shares: the one error shape ``{"error": {"code", "message", "details"}}``,
the admission of a team key (authentication, the per-key rate limit, the scope, the body's size),
the JSON body reader, the renderer, and idempotent creates.

django-ninja runs an operation as: admission (:class:`TeamKey`, the operation's ``auth``) → its
parameters and body validated against the typed schemas of :mod:`assistants.api.schemas` → the view.
Every refusal on the way, ninja's own included, is answered in the one shape by the handlers that
:func:`install_error_handlers` adds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from datetime import datetime
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from ninja import Header, Status
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBearer
from pydantic import BaseModel

from assistants.api.keys import api_key_authenticate
from assistants.models import ApiKey
from chatsite.lib import json_body, ratelimit
from chatsite.lib.shared_redis import redis_client
from chatsite.lib.unavailable import unavailable_response

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
RATE_WINDOW_SECONDS = 60
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY_LOCK_SECONDS = 60  # how long a crashed first attempt blocks its retries
BODY_METHODS = {"POST", "PATCH", "PUT"}
CONTENT_TYPE = "application/json"  # JSON is UTF-8 by definition (RFC 8259): no charset parameter


class ApiError(Exception):
    """A refusal the client can act on; views raise it, the API answers with it."""

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


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    return ApiError(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed here.",
        {"allowed": allowed},
        headers={"Allow": ", ".join(allowed)},
    ).response()


def path_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any other path under the API (``/assistants/-1``, a typo) is a 404 in the one error shape, not HTML."""
    return ApiError(404, "not_found", f"No such path: {request.path}.").response()


path_not_found.csrf_exempt = True  # no cookies: a key in a header is not sent by a cross-site form
path_not_found.api_methods = []  # answers no method of its own: the contract test documents none


def upload_limit_bytes() -> int:
    """The largest multipart body accepted: API_UPLOAD_MAX_FILES files of UPLOAD_MAX_BYTES, plus 1 MiB of form."""
    return settings.API_UPLOAD_MAX_FILES * settings.UPLOAD_MAX_BYTES + MAX_BODY_BYTES


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# Admission


class TeamKey(HttpBearer):
    """A team API key, ``Authorization: Bearer cs_<prefix>_<secret>``, that must hold ``scope``.

    Admission, in order: the key (401), the key's rate limit (429), the scope (403), then the size of
    the body, judged by its declared length before it is read (413). ``upload``: the operation takes
    ``multipart/form-data`` (its files are parsed here, so that a malformed body is this request's 400)
    instead of JSON. ninja puts the key in ``request.auth``; its team scopes every read.
    """

    openapi_bearerFormat = "cs_<prefix>_<secret>"
    openapi_description = (
        "A team API key, created (and revoked) by a team owner or admin on the dashboard's *API keys* page "
        "and shown once; send it as `Authorization: Bearer cs_<prefix>_<secret>`."
    )

    def __init__(self, scope: str, *, upload: bool = False):
        if scope not in ApiKey.Scope.values:
            raise ValueError(f"unknown scope {scope!r}; expected one of {ApiKey.Scope.values}")
        self.scope, self.upload = scope, upload
        super().__init__()

    def __call__(self, request: HttpRequest) -> ApiKey:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = self.authenticate(request, token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError(
                401,
                "unauthorized",
                "Send a valid API key as 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        _rate_limit(key)
        if self.scope not in key.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"This key lacks the '{self.scope}' scope.",
                {"required": self.scope, "granted": key.scopes},
            )
        if request.method in BODY_METHODS:
            _admit_files(request) if self.upload else _admit_json(request)
        return key

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(raw_key=token)


def _rate_limit(key: ApiKey) -> None:
    """At most API_RATE_LIMIT_PER_MINUTE requests per key in a minute (chatsite.lib.ratelimit's window)."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    # The key's hash, not its id: ids come back when a test database is recreated, hashes do not.
    verdict = ratelimit.hit(f"api:{key.key_hash}", limit=limit, window=RATE_WINDOW_SECONDS)
    if not verdict.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests: this key may make {limit} per minute.",
            {"limit": limit, "retry_after": verdict.retry_after},
            headers={"Retry-After": str(verdict.retry_after)},
        )


def _too_large(limit: int, details: dict | None = None, what: str = "The body") -> ApiError:
    return ApiError(413, "payload_too_large", f"{what} is larger than {limit} bytes.", details)


def _admit_json(request: HttpRequest) -> None:
    if _declared_length(request) > MAX_BODY_BYTES:
        raise _too_large(MAX_BODY_BYTES)


def _admit_files(request: HttpRequest) -> None:
    """A ``multipart/form-data`` body: refused with 413 by its declared size before Django reads it.

    Django streams the parts into temporary files, so a large upload is never held in memory.
    """
    if request.content_type != "multipart/form-data":
        raise invalid("Send the files as multipart/form-data (one or more 'file' parts).")
    if _declared_length(request) > upload_limit_bytes():
        raise _too_large(
            upload_limit_bytes(),
            {"max_file_bytes": settings.UPLOAD_MAX_BYTES, "max_files": settings.API_UPLOAD_MAX_FILES},
            what="The upload",
        )
    try:
        request.FILES  # noqa: B018 -- parse now, so that a malformed body is this request's 400
    except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
        raise invalid(f"The multipart body cannot be read: {exc}.") from None


# Bodies in, bodies out


class JsonBody(Parser):
    """Request bodies: a JSON object, read by the one reader every endpoint uses (NUL characters removed)."""

    def parse_body(self, request: HttpRequest) -> dict:
        # ninja answers what this raises as its own 400; install_error_handlers gives our refusal back.
        if len(request.body) > MAX_BODY_BYTES:
            raise _too_large(MAX_BODY_BYTES)
        if request.content_type != "application/json":
            raise invalid("Send the body as JSON (Content-Type: application/json).")
        try:
            payload = json_body.loads(request.body)
        except ValueError as exc:
            raise invalid(f"The body is not valid JSON: {exc}.") from None
        if not isinstance(payload, dict):
            raise invalid("The body must be a JSON object.")
        return payload


class _Encoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat()  # to the microsecond, with its offset (Django's encoder cuts both)
        return super().default(o)


class JsonRenderer(JSONRenderer):
    media_type = CONTENT_TYPE
    encoder_class = _Encoder


RENDERER = JsonRenderer()


def rendered(request: HttpRequest, result: Any) -> HttpResponseBase:
    """A view's result as the response ninja would send (``Status(code, value)`` sets the status)."""
    if isinstance(result, HttpResponseBase):
        return result
    status = 200
    if isinstance(result, Status):
        status, result = result.status_code, result.value
    data = result.model_dump() if isinstance(result, BaseModel) else result
    return HttpResponse(
        RENDERER.render(request, data, response_status=status), status=status, content_type=CONTENT_TYPE
    )


# Refusals in the one shape

_NICER = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
}


def _message(error: dict) -> str:
    message = _NICER.get(error["type"], error["msg"])
    return message.removeprefix("Value error, ")  # what a validator of ours said, as it said it


def _position(location: tuple) -> str:
    """Where inside a field the error is, for a person: ``Item 2: …`` of a list, ``key: …`` of an object."""
    return "".join(f"Item {part + 1}: " if isinstance(part, int) else f"{part}: " for part in location)


def validation_error_response(errors: list[dict]) -> JsonResponse:
    """ninja's validation errors (pydantic's, located) as our refusals:

    - unknown body fields: ``invalid_request`` naming them;
    - a query parameter or header: ``invalid_request`` with ``{"parameter": name}`` (or ``{"header": name}``);
    - a body that is not an object, or none at all: ``invalid_request``;
    - body fields and files: ``validation_failed`` with ``{"field": ["why", ...]}``, every field at once.
    """
    unknown = [
        error["loc"][2]
        for error in errors
        if error["type"] == "extra_forbidden" and error["loc"][0] == "body" and len(error["loc"]) == 3
    ]
    if unknown:
        return invalid(
            f"Unknown fields: {', '.join(unknown)}.", {name: ["Unknown field."] for name in unknown}
        ).response()
    for error in errors:
        source, location = error["loc"][0], error["loc"][1:]
        if source in ("query", "path", "header", "cookie"):
            name = str(location[0])
            kind = "header" if source == "header" else "parameter"
            return invalid(f"{name}: {_message(error)}", {kind: name}).response()
    fields: dict[str, list[str]] = {}
    for error in errors:
        source, location = error["loc"][0], list(error["loc"][1:])
        if source == "body":
            location = location[1:]  # the view's parameter, the body itself
            if not location:
                if error["type"] == "missing":
                    return invalid("Send a JSON object as the body (Content-Type: application/json).").response()
                return invalid("The body must be a JSON object.").response()
        field, inside = str(location[0]), tuple(location[1:])
        fields.setdefault(field, []).append(_position(inside) + _message(error))
    return fields_invalid(fields).response()


def install_error_handlers(api) -> None:
    """Answer every refusal of ``api``, ninja's own included, in the one error shape."""

    def http_error(request, exc: HttpError):
        if isinstance(exc.__cause__, ApiError):  # raised by JsonBody, wrapped by ninja
            return exc.__cause__.response()
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}.get(
            exc.status_code, "invalid_request"
        )
        return ApiError(exc.status_code, code, str(exc)).response()

    def database_unavailable(request, exc: DatabaseError):
        if isinstance(exc, OperationalError | InterfaceError):  # no connection to be had: 503, not 500
            logger.warning("database unavailable for %s: %s", request.path, exc)
            return unavailable_response()
        return server_error(request, exc)

    def server_error(request, exc: Exception):
        # Logged and signalled as Django does for any view (the test client re-raises it), then
        # answered in the one shape rather than as an HTML page.
        logger.error("Internal Server Error: %s", request.path, exc_info=exc)
        got_request_exception.send(sender=None, request=request)
        return ApiError(500, "internal_error", "Something went wrong on our side; it has been logged.").response()

    api.add_exception_handler(ApiError, lambda request, exc: exc.response())
    api.add_exception_handler(ValidationError, lambda request, exc: validation_error_response(exc.errors))
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Http404, lambda request, exc: ApiError(404, "not_found", "Not found.").response())
    api.add_exception_handler(RequestDataTooBig, lambda request, exc: _too_large(MAX_BODY_BYTES).response())
    api.add_exception_handler(DatabaseError, database_unavailable)
    api.add_exception_handler(Exception, server_error)


# Idempotent creates

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes a retry safe: the same key and body within 24 h returns the first response "
        "(with `Idempotent-Replayed: true`) and creates nothing.",
        examples=["3f1c9a52-0b7e-4c1e-9d57-6f1f0e3c2a10"],
    ),
]


def idempotent(view):
    """Make a create view safe to retry: with an ``Idempotency-Key`` header (the view's
    ``idempotency_key: IdempotencyKey = None`` parameter), the same key and body answer the first
    response again, creating nothing (see :func:`_replay_or_run`). Synchronous views only; they
    return ``Status(code, <response schema instance>)``, rendered here as ninja would."""

    @functools.wraps(view)
    def operation(request, **kwargs):
        idempotency_key = kwargs.get("idempotency_key")
        if idempotency_key is None:
            return view(request, **kwargs)
        return _replay_or_run(request, idempotency_key, lambda: rendered(request, view(request, **kwargs)))

    return operation


def _replay_or_run(request: HttpRequest, idempotency_key: str, respond) -> HttpResponse:
    """Answer a retried create (same key, same Idempotency-Key) with the first response, creating nothing.

    The first attempt holds a short lock; a retry arriving meanwhile gets 409. Only successful
    responses are kept (24 h); after a refusal the same Idempotency-Key may be used again.
    """
    name = f"api:idempotency:{request.auth.key_hash}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
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
        return HttpResponse(
            first["content"],
            status=first["status"],
            content_type=CONTENT_TYPE,
            headers={"Idempotent-Replayed": "true"},
        )
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
            "content": response.content.decode(),
        }
        store.set(name, json.dumps(done), ex=IDEMPOTENCY_TTL_SECONDS)
    else:
        store.delete(name)
    return response
