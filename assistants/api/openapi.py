"""The API object: django-ninja's ``NinjaAPI`` with the house rules, and the two operations that
describe it — ``GET /openapi.json``, generated from the typed operations, and ``GET /docs``, a
reference page for people (Redoc, served from our own static files under a strict CSP).

On top of what ninja generates, each operation's description gets: the scope its key needs
(``x-scope``), every refusal it can answer with (derived from its shape — a key, an id in the path,
parameters, a body, an Idempotency-Key — plus those it declares with :func:`responds`), and an
example call (``x-codeSamples``, curl) whose body is the request schema's own example.
"""

from __future__ import annotations

import copy
import json
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import path as django_path
from django.urls import reverse
from django.utils.html import format_html
from ninja import NinjaAPI, Router
from ninja.utils import normalize_path, replace_path_param_notation

from assistants.api import schemas
from assistants.api.http import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    RENDERER,
    JsonBody,
    TeamKey,
    install_error_handlers,
    method_not_allowed,
)

REF = "#/components/schemas/{model}"

# Every refusal an operation can answer with: status, when, and an example body.
REFUSALS = {
    "Invalid": (
        400,
        "The request is invalid: body fields (validation_failed, each field's reasons in details), or a "
        "parameter, a header or a body that is not a JSON object (invalid_request).",
        {
            "code": "validation_failed",
            "message": "Some fields are invalid.",
            "details": {"name": ["This field is required."]},
        },
    ),
    "Unauthorized": (
        401,
        "No API key, or a revoked or unknown one (unauthorized).",
        {"code": "unauthorized", "message": "Send a valid API key as 'Authorization: Bearer <key>'.", "details": {}},
    ),
    "Forbidden": (
        403,
        "The key lacks the operation's scope (insufficient_scope).",
        {
            "code": "insufficient_scope",
            "message": "This key lacks the 'write' scope.",
            "details": {"required": "write", "granted": ["read"]},
        },
    ),
    "NotFound": (
        404,
        "No such object in the key's team (not_found); another team's ids read the same.",
        {"code": "not_found", "message": "No such assistant.", "details": {}},
    ),
    "Conflict": (
        409,
        "A request with the same Idempotency-Key is still running (idempotency_in_progress), or the object is "
        "not in a state that allows this (conflict).",
        {"code": "conflict", "message": "There is no crawl to pause.", "details": {}},
    ),
    "PayloadTooLarge": (
        413,
        f"The body is over {MAX_BODY_BYTES} bytes, or an upload over its cap (payload_too_large).",
        {"code": "payload_too_large", "message": f"The body is larger than {MAX_BODY_BYTES} bytes.", "details": {}},
    ),
    "RateLimited": (
        429,
        "Too many requests for this key (rate_limited); wait the Retry-After header's seconds.",
        {
            "code": "rate_limited",
            "message": "Too many requests: this key may make 120 per minute.",
            "details": {"limit": 120, "retry_after": 17},
        },
    ),
    "AnswerFailed": (
        502,
        "The language model failed (answer_failed); details hold the partial answer.",
        {
            "code": "answer_failed",
            "message": "The language model did not answer in time.",
            "details": {"kind": "timeout", "conversation_id": 1280, "message_id": 5532, "partial_answer": ""},
        },
    ),
}
# Schemas the document uses besides the operations' own.
EXTRA_SCHEMAS = (schemas.Error, schemas.ChatEvent)

TAGS = [
    ("Assistants", "An assistant answers visitors from its content, with its own look and language model."),
    ("Sources", "Websites an assistant crawls, once or on a schedule, and their crawls."),
    ("Documents", "Crawled pages, uploaded files, documents added by address, and Q&A pairs."),
    ("Conversations", "What visitors asked and what they were answered, listed or exported."),
    ("Feedback", "Ratings of answers, and visitors' requests to be contacted."),
    ("Chat", "Asking an assistant, as JSON or streamed."),
    ("Reference", "This description of the API."),
]


def refusal(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def responds(status: int, description: str, *refusals: str, streamed: type | None = None) -> dict:
    """An operation's ``openapi_extra``: what its success means, the refusals particular to it (those
    its shape implies are added for every operation), and ``streamed``: the schema of each
    Server-Sent Event when it can also answer as ``text/event-stream``."""
    success = {"description": description}
    if streamed is not None:
        success["content"] = {"text/event-stream": {"schema": {"$ref": REF.format(model=streamed.__name__)}}}
    return {"responses": {status: success, **{REFUSALS[name][0]: refusal(name) for name in refusals}}}


def _description() -> str:
    return f"""Manage a team's assistants — their sources, documents and conversations — and ask them questions.

# Authentication

Every operation but this description takes a **team API key**. A team owner or admin creates one on the
dashboard, with the **API keys** button beside the team's name; the key is shown once, when created.
Send it with every request:

    Authorization: Bearer cs_<prefix>_<secret>

A key has **scopes**: `read` (reading), `write` (creating, changing, deleting, crawling, uploading) and
`chat` (asking questions). Each operation names the scope it needs. A missing, unknown or revoked key
answers 401; a key without the scope, 403. Everything is scoped to the key's team: another team's ids
answer 404, like ids that do not exist.

<!-- ReDoc-Inject: <security-definitions> -->

# Errors

Every refusal, whatever its status, has one shape (the `Error` schema):

    {{"error": {{"code": "validation_failed", "message": "Some fields are invalid.",
               "details": {{"name": ["This field is required."]}}}}}}

`code` is stable and meant for programs, `message` for people, and `details` says more where it can: the
reasons per body field, or the `parameter` or `header` at fault. A request body must be a JSON object
(`Content-Type: application/json`) of at most {MAX_BODY_BYTES} bytes, without unknown fields.

# Limits

Each key may make {settings.API_RATE_LIMIT_PER_MINUTE} requests a minute; beyond, 429 with a `Retry-After`
header. Lists of documents, feedback and conversations come in pages: `?limit=` (1 to
{settings.API_MAX_PAGE_SIZE}, {settings.API_PAGE_SIZE} by default), then `?cursor=` with the page's
`next_cursor` until it is null. An upload takes at most {settings.API_UPLOAD_MAX_FILES} files of at most
{settings.UPLOAD_MAX_BYTES} bytes each.

# Retries

Operations that create take an `Idempotency-Key` header: sent again with the same key and body within 24
hours, the request answers the first response again (with `Idempotent-Replayed: true`) and creates
nothing more.
"""


class Api(NinjaAPI):
    """django-ninja's API with the house rules: every answer that is not a success in the one error
    shape (ninja's validation errors, 405s with ``Allow`` and, from ``urls.py``, unknown paths
    included), JSON as ``application/json``, and the OpenAPI document described above."""

    def __init__(self, **kwargs):
        super().__init__(openapi_url=None, docs_url=None, renderer=RENDERER, parser=JsonBody(), **kwargs)
        install_error_handlers(self)
        self._served_document: tuple[tuple, str] | None = None

    def add_reference(self) -> None:
        """Mount ``GET /openapi.json`` and ``GET /docs`` (public); after the resource routers."""
        reference = Router(tags=["Reference"])
        api = self

        @reference.get(
            "/openapi.json",
            auth=None,
            response=dict,
            summary="Get this description",
            openapi_extra={
                "responses": {
                    200: {
                        "description": "The OpenAPI 3.1 document of the API.",
                        "content": {
                            CONTENT_TYPE: {
                                "example": {"openapi": "3.1.0", "info": {"title": "Chatsite API"}, "paths": {}}
                            }
                        },
                    }
                }
            },
        )
        def openapi_json(request):
            return api.get_openapi_schema()

        @reference.get(
            "/docs",
            auth=None,
            summary="Read the reference",
            openapi_extra={
                "responses": {
                    200: {
                        "description": "This description, drawn for people: every operation with an example request "
                        "and response, and how to authenticate.",
                        "content": {
                            "text/html": {
                                "schema": {"type": "string"},
                                "example": '<!doctype html><html lang="en">…<redoc spec-url="openapi.json">…',
                            }
                        },
                    }
                }
            },
        )
        def docs(request):
            return docs_page(request, title=api.title)

        self.add_router("", reference)

    def get_content_type(self) -> str:
        return CONTENT_TYPE

    def get_openapi_operation_id(self, operation) -> str:
        return "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", operation.summary))

    def _get_urls(self) -> list:
        """One URL per path (ninja makes one per operation), answering other methods with 405 in the one shape."""
        urls = []
        for bound in self._get_bound_routers():
            for path, path_view in bound.path_operations.items():
                route = normalize_path("/".join(p for p in (bound.prefix, path) if p)).lstrip("/")
                view = _allowing(path_view, sorted({method for op in path_view.operations for method in op.methods}))
                urls.append(django_path(replace_path_param_notation(route), view, name=view.__name__))
        return urls

    def operations(self) -> dict[tuple[str, str], object]:
        """(method, OpenAPI path) → ninja's operation, for every operation the API answers."""
        found = {}
        for bound in self._get_bound_routers():
            for path, path_view in bound.path_operations.items():
                route = re.sub(r"{[^}:]+:", "{", normalize_path("/" + "/".join(p for p in (bound.prefix, path) if p)))
                for operation in path_view.operations:
                    found |= {(method.lower(), route): operation for method in operation.methods}
        return found

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> dict:
        """The OpenAPI document as ``openapi.json`` serves it, JSON-ready: ninja's, completed as the module
        says (``manage.py export_openapi_schema --api assistants.api.urls.api`` writes it too). Built once
        per process for what it reads at run time (the mount point, the limits the description states
        and the site's address in the examples): ~50 ms each time."""
        base_path = reverse(f"{self.urls_namespace}:openapi_json").removesuffix("/openapi.json")
        key = (base_path, _description(), settings.SITE_URL)
        if self._served_document is None or self._served_document[0] != key:
            self._served_document = (key, json.dumps(self._openapi_document(base_path, key[1])))
        return json.loads(self._served_document[1])  # the caller's own copy

    def _openapi_document(self, base_path: str, description: str) -> dict:
        document = copy.deepcopy(dict(super().get_openapi_schema(path_prefix="")))  # paths under "servers"
        document["servers"] = [{"url": base_path}]
        document["info"]["description"] = description
        document["tags"] = [{"name": name, "description": text} for name, text in TAGS]
        components = document["components"]
        for model in EXTRA_SCHEMAS:
            schema = model.model_json_schema(ref_template=REF)
            components["schemas"] |= schema.pop("$defs", {}) | {model.__name__: schema}
        components["responses"] = {
            name: {
                "description": text,
                "content": {
                    CONTENT_TYPE: {"schema": {"$ref": REF.format(model="Error")}, "example": {"error": example}}
                },
                **(
                    {"headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}}
                    if status == 429
                    else {}
                ),
            }
            for name, (status, text, example) in REFUSALS.items()
        }
        for (method, route), operation in self.operations().items():
            if operation.include_in_schema:
                _complete(document["paths"][route][method], operation, method, route, document)
        for schema in components["schemas"].values():
            _untitled(schema.get("properties", {}))
        for item in document["paths"].values():
            _untitled(item)
        return document


def _allowing(path_view, allowed: list[str]):
    """ninja's view of one path, answering a method none of its operations takes with 405 in our shape."""
    view = path_view.get_view()
    if path_view.is_async:

        async def dispatch(request, *args, **kwargs):
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            return await view(request, *args, **kwargs)

    else:

        def dispatch(request, *args, **kwargs):
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            return view(request, *args, **kwargs)

    dispatch.__name__ = path_view.operations[0].view_func.__name__
    dispatch.csrf_exempt = True  # no cookies: a key in a header is not sent by a cross-site form
    dispatch.api_methods = allowed
    return dispatch


def _complete(entry: dict, operation, method: str, route: str, document: dict) -> None:
    """Add to one operation's description its scope, the refusals its shape implies, and a curl example."""
    keys = [auth for auth in operation.auth_callbacks if isinstance(auth, TeamKey)]
    parameters = entry.get("parameters", [])
    where = {parameter["in"] for parameter in parameters}
    body = entry.get("requestBody", {}).get("content", {})
    implied = []
    if keys:
        entry["x-scope"] = keys[0].scope
        entry["description"] = "\n\n".join(filter(None, [f"Scope: `{keys[0].scope}`.", entry.get("description")]))
        implied += ["Unauthorized", "Forbidden", "RateLimited"]
    else:
        entry["security"] = []  # public
    if "path" in where:
        implied.append("NotFound")
    if where & {"query", "header"} or body:
        implied.append("Invalid")
    if body:
        implied.append("PayloadTooLarge")
    if any(parameter["name"] == "Idempotency-Key" for parameter in parameters):
        implied.append("Conflict")
    for name in implied:
        entry["responses"].setdefault(REFUSALS[name][0], refusal(name))
    entry["responses"] = dict(sorted(entry["responses"].items()))
    entry["x-codeSamples"] = _code_samples(entry, method, route, document, authenticated=bool(keys))


def _untitled(node) -> None:
    """Drop the titles pydantic gives every field ("Llm Model"): the field's name says it. Examples,
    defaults and components' own names are left alone."""
    if isinstance(node, list):
        for item in node:
            _untitled(item)
    elif isinstance(node, dict):
        if isinstance(node.get("title"), str):
            del node["title"]
        for key, value in node.items():
            if key not in ("examples", "example", "default", "x-codeSamples"):
                _untitled(value)


def _resolve(schema: dict, document: dict) -> dict:
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _code_samples(entry: dict, method: str, route: str, document: dict, *, authenticated: bool) -> list[dict]:
    """curl calls of the operation: its path with the example ids, the key, and the body schema's example
    (a second call streams, where the body can ask for that)."""
    url = settings.SITE_URL + document["servers"][0]["url"] + route
    headers = []
    for parameter in entry.get("parameters", []):
        if parameter["in"] == "path":
            url = url.replace(f"{{{parameter['name']}}}", str(parameter.get("examples", [1])[0]))
        if parameter["name"] == "Idempotency-Key":
            headers.append('-H "Idempotency-Key: $(uuidgen)"')
    if authenticated:
        headers.insert(0, '-H "Authorization: Bearer $CHATSITE_API_KEY"')
    content = entry.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        headers += ['-F "file=@faq.pdf"', '-F "file=@price-list.xlsx"']
    calls = [("curl", f'curl -X {method.upper()} "{url}"', None)]
    if "application/json" in content:
        schema = _resolve(content["application/json"]["schema"], document)
        example = (schema.get("examples") or [{}])[0]
        calls = [("curl", calls[0][1], example)]
        if "stream" in schema.get("properties", {}):
            calls.append(("curl, streamed", f'curl -N -X {method.upper()} "{url}"', {**example, "stream": True}))
    samples = []
    for label, command, body in calls:
        lines = [command, *headers]
        if body is not None:
            lines += ['-H "Content-Type: application/json"', f"-d '{json.dumps(body, ensure_ascii=False)}'"]
        samples.append({"lang": "Shell", "label": label, "source": " \\\n  ".join(lines)})
    return samples


# The reference page


def docs_csp() -> str:
    """The page's Content-Security-Policy: our own scripts only (none inline), our own styles (the
    reference's components add theirs inline), its search worker, and the document from this origin."""
    static = urlsplit(settings.STATIC_URL)
    origin = [f"{static.scheme}://{static.netloc}"] if static.scheme and static.netloc else []
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", *origin],
        "style-src": ["'self'", "'unsafe-inline'", *origin],
        "img-src": ["'self'", "data:", *origin],
        "font-src": ["'self'", *origin],
        "connect-src": ["'self'"],
        "worker-src": ["blob:"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


THEME = {
    "colors": {"primary": {"main": "#2563eb"}},
    "typography": {
        "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
    },
}


def docs_page(request: HttpRequest, *, title: str) -> HttpResponse:
    """Redoc (shipped in django-ninja's static files) drawing ``openapi.json``: a menu of every
    operation, each with its parameters, body and responses, an example request and response, and
    the authentication section. Configured by the ``<redoc>`` element's attributes: no inline script;
    ``js/api-docs.js`` first keeps the page from fetching images elsewhere."""
    page = format_html(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{} — reference</title><link rel="icon" href="{}" type="image/svg+xml"></head>'
        '<body style="margin:0">'
        '<noscript><p>This reference is drawn with JavaScript. The description it draws is <a href="openapi.json">'
        "openapi.json</a>.</p></noscript>"
        '<redoc spec-url="openapi.json" required-props-first="true" expand-responses="200,201,202" '
        'path-in-middle-panel="true" payload-sample-idx="1" json-sample-expand-level="all" theme="{}"></redoc>'
        '<script src="{}"></script><script src="{}"></script></body></html>',
        title,
        static("ninja/favicon.svg"),
        json.dumps(THEME),
        static("js/api-docs.js"),
        static("ninja/redoc.standalone.js"),
    )
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = docs_csp()
    response["Cache-Control"] = "no-cache"
    return response
