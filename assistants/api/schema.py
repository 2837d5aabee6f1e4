"""The OpenAPI 3.1 document of ``/api/v1/``, and the HTML page that renders it (``/api/v1/docs``).

Written by hand, next to the views it describes; ``tests/api/test_contract.py`` checks that every
route and method is here and that real responses match the response schemas.
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _path_id(name: str, what: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
        "description": f"The {what}'s id.",
    }


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Makes a retry safe: the same key and body within 24 h returns the first response and creates nothing.",
}

ASSISTANT_FIELDS = {
    "name": {"type": "string", "maxLength": 120},
    "greeting": {"type": "string", "maxLength": 300},
    "system_prompt": {"type": "string"},
    "primary_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "background_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "allowed_domains": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Sites that may embed the assistant.",
    },
    "avatar_url": {"type": "string", "maxLength": 500, "description": "An http(s) image shown next to answers."},
    "logo_url": {"type": "string", "maxLength": 500, "description": "An http(s) image in the chat's header."},
    "launcher_position": {"type": "string", "enum": ["right", "left"]},
    "launcher_icon": {"type": "string", "enum": ["chat", "help", "spark"]},
    "theme": {"type": "string", "enum": ["auto", "light", "dark"]},
    "suggested_questions": {
        "type": "array",
        "items": {"type": "string", "maxLength": 120},
        "maxItems": 6,
        "description": "Shown as buttons before the first question.",
    },
    "show_powered_by": {"type": "boolean"},
    "language": {
        "type": "string",
        "enum": ["", "en", "fr", "de", "es", "zh"],
        "description": '"": the visitor\'s browser.',
    },
    "llm_provider": {
        "type": "string",
        "enum": ["", "openai", "anthropic", "gemini"],
        "description": '"": the server\'s default.',
    },
    "llm_model": {"type": "string", "maxLength": 200},
    "llm_base_url": {"type": "string", "maxLength": 500, "description": '"": the provider\'s official API.'},
    "reranker_model": {
        "type": "string",
        "maxLength": 200,
        "description": 'A cross-encoder or Qwen3-Reranker; "": none.',
    },
}
ACCESS_CODE = {
    "type": ["string", "null"],
    "minLength": 4,
    "maxLength": 128,
    "writeOnly": True,
    "description": "Makes the assistant internal (visitors enter it first); null makes it public again.",
}

TIMESTAMP = {"type": "string", "format": "date-time"}
NEXT_CURSOR = {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last."}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable and machine-readable, e.g. not_found, validation_failed.",
                    },
                    "message": {"type": "string", "description": "One sentence for a person."},
                    "details": {"type": "object", "description": "Per field or parameter, when there is more to say."},
                },
            }
        },
    },
    "Assistant": {
        "type": "object",
        "required": ["id", "slug", "public_key", *ASSISTANT_FIELDS, "internal", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "slug": {"type": "string"},
            "public_key": {
                "type": "string",
                "description": "Identifies the assistant in the widget; it only allows chatting.",
            },
            **ASSISTANT_FIELDS,
            "internal": {"type": "boolean", "description": "Whether visitors need an access code."},
            "created_at": TIMESTAMP,
        },
    },
    "AssistantInput": {
        "type": "object",
        "properties": {**ASSISTANT_FIELDS, "access_code": ACCESS_CODE},
        "additionalProperties": False,
        "description": "Creating requires name; updating (PATCH) changes only the fields sent.",
    },
    "AssistantList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("Assistant")}},
    },
    "Source": {
        "type": "object",
        "required": [
            "id",
            "assistant_id",
            "kind",
            "name",
            "url",
            "schedule",
            "settings",
            "status",
            "error",
            "created_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "assistant_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["website", "document", "qa"]},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "schedule": {"type": "string", "enum": ["manual", "hourly", "daily", "weekly"]},
            "settings": {"type": "object", "description": "max_pages, max_depth and render_javascript of a website."},
            "status": {"type": "string", "enum": ["idle", "queued", "running", "paused", "ready", "failed"]},
            "error": {"type": "string"},
            "created_at": TIMESTAMP,
        },
    },
    "SourceWithProgress": {
        "allOf": [_ref("Source")],
        "type": "object",
        "required": ["progress"],
        "properties": {"progress": _ref("Progress")},
    },
    "Progress": {
        "type": "object",
        "required": ["status", "status_label", "error", "run", "documents"],
        "properties": {
            "status": {"type": "string"},
            "status_label": {"type": "string"},
            "error": {"type": "string"},
            "run": {
                "type": ["object", "null"],
                "description": "The latest crawl.",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {
                        "type": "string",
                        "enum": ["queued", "running", "indexing", "paused", "done", "cancelled", "failed"],
                    },
                    **{
                        name: {"type": "integer"}
                        for name in ("pages_found", "pages_fetched", "pages_failed", "pages_skipped", "pages_unchanged")
                    },
                    "started_at": {"type": ["string", "null"], "format": "date-time"},
                    "finished_at": {"type": ["string", "null"], "format": "date-time"},
                    "report": {
                        "type": "object",
                        "description": "The crawl report: lists (failed, skipped, thin, duplicate, …) of {url, reason}.",
                        "additionalProperties": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["url", "reason"],
                                "properties": {"url": {"type": "string"}, "reason": {"type": "string"}},
                            },
                        },
                    },
                },
            },
            "documents": {
                "type": "object",
                "properties": {name: {"type": "integer"} for name in ("total", "ready", "pending", "failed", "chunks")},
            },
        },
    },
    "SourceList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("Source")}},
    },
    "SourceInput": {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["website"], "default": "website"},
            "url": {"type": "string", "format": "uri", "description": "A public http(s) address."},
            "max_pages": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200},
            "max_depth": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
            "schedule": {"type": "string", "enum": ["manual", "hourly", "daily", "weekly"], "default": "manual"},
            "render_javascript": {
                "type": "boolean",
                "default": False,
                "description": "Run each page's scripts in headless Chromium before extracting its text.",
            },
        },
    },
    "Conversation": {
        "type": "object",
        "required": ["id", "assistant_id", "page_url", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "assistant_id": {"type": "integer"},
            "page_url": {"type": "string"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "ConversationPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": _ref("Conversation")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as ?cursor= for the next page; null on the last.",
            },
        },
    },
    "Message": {
        "type": "object",
        "required": ["role", "text", "citations", "created_at"],
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "text": {"type": "string"},
            "citations": {"type": "array", "items": _ref("Citation")},
            "created_at": TIMESTAMP,
        },
    },
    "ConversationWithMessages": {
        "allOf": [_ref("Conversation")],
        "type": "object",
        "required": ["messages"],
        "properties": {"messages": {"type": "array", "items": _ref("Message")}},
    },
    "Citation": {
        "type": "object",
        "required": ["n", "title", "url"],
        "properties": {
            "n": {"type": "integer", "description": "The [n] the answer uses."},
            "title": {"type": "string"},
            "section": {"type": "string"},
            "url": {"type": "string"},
            "chunk_id": {"type": "integer"},
        },
    },
    "Document": {
        "type": "object",
        "required": [
            "id",
            "source_id",
            "url",
            "title",
            "file_name",
            "status",
            "error",
            "warnings",
            "chunk_count",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "source_id": {"type": "integer"},
            "url": {"type": "string", "description": "The page, or where the uploaded file is served."},
            "title": {"type": "string"},
            "file_name": {"type": "string", "description": "An upload's file name; empty for a web page."},
            "status": {"type": "string", "enum": ["pending", "ready", "failed"]},
            "error": {"type": "string", "description": "Why it failed, in words."},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "chunk_count": {"type": "integer"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "DocumentPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": _ref("Document")}, "next_cursor": NEXT_CURSOR},
    },
    "DocumentUpload": {
        "type": "object",
        "required": ["source", "documents"],
        "properties": {
            "source": _ref("SourceWithProgress"),
            "documents": {"type": "array", "items": _ref("Document")},
        },
    },
    "QAInput": {
        "type": "object",
        "required": ["question", "answer"],
        "additionalProperties": False,
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": 500, "description": "Or a snippet's title."},
            "answer": {"type": "string", "minLength": 1, "maxLength": 20000, "description": "Or a snippet's text."},
        },
    },
    "ChatEvent": {
        "type": "object",
        "description": "One Server-Sent Event of a streamed answer (the schema of each event, not of the stream).",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": ["meta", "token", "citations", "error", "done"]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "description": "A JSON object: meta {conversation_id}, token {text}, citations {citations, html}, "
                "error {kind, message, offer_human}, done {message_id, unanswered}.",
            },
        },
    },
    "DocumentUrlInput": {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "maxLength": 2000, "description": "An http or https address of a document."},
        },
    },
    "Feedback": {
        "type": "object",
        "required": ["id", "conversation_id", "message_id", "kind", "rating", "comment", "details", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "conversation_id": {"type": "integer"},
            "message_id": {"type": ["integer", "null"], "description": "The rated answer; null for a contact request."},
            "kind": {"type": "string", "enum": ["rating", "contact"]},
            "rating": {"type": ["integer", "null"], "enum": [1, -1, None]},
            "comment": {"type": "string"},
            "details": {"type": "object", "description": "A contact request's name, email, message and page_url."},
            "created_at": TIMESTAMP,
        },
    },
    "FeedbackPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": _ref("Feedback")}, "next_cursor": NEXT_CURSOR},
    },
    "ChatInput": {
        "type": "object",
        "required": ["question"],
        "additionalProperties": False,
        "properties": {
            "question": {"type": "string", "maxLength": 2000},
            "conversation_id": {
                "type": ["integer", "null"],
                "description": "Continue a conversation this key started.",
            },
            "stream": {"type": "boolean", "default": False, "description": "Answer as Server-Sent Events."},
        },
    },
    "ChatAnswer": {
        "type": "object",
        "required": ["conversation_id", "answer", "citations", "message_id"],
        "properties": {
            "conversation_id": {"type": "integer"},
            "answer": {"type": "string", "description": "Markdown with [n] citations."},
            "citations": {"type": "array", "items": _ref("Citation")},
            "message_id": {"type": "integer"},
        },
    },
}

ERROR_RESPONSES = {
    "Invalid": _json(_ref("Error"), "The request is invalid (validation_failed, invalid_request)."),
    "Unauthorized": _json(_ref("Error"), "No API key, or a revoked or unknown one (unauthorized)."),
    "Forbidden": _json(_ref("Error"), "The key lacks the operation's scope (insufficient_scope)."),
    "NotFound": _json(_ref("Error"), "No such object in the key's team (not_found); another team's ids read the same."),
    "MethodNotAllowed": _json(
        _ref("Error"), "The path does not answer this method (method_not_allowed); see the Allow header."
    ),
    "Conflict": _json(
        _ref("Error"), "A request with the same Idempotency-Key is still running (idempotency_in_progress)."
    ),
    "PayloadTooLarge": _json(_ref("Error"), "The body is over 1 MiB, or a file over its cap (payload_too_large)."),
    "StateConflict": _json(_ref("Error"), "The object is not in a state that allows this (conflict)."),
    "RateLimited": {
        **_json(_ref("Error"), "Too many requests for this key this minute (rate_limited)."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until the next window."}},
    },
    "AnswerFailed": _json(_ref("Error"), "The language model failed (answer_failed); details hold the partial answer."),
}
ERROR_STATUS = {
    "Invalid": "400",
    "Unauthorized": "401",
    "Forbidden": "403",
    "NotFound": "404",
    "MethodNotAllowed": "405",
    "Conflict": "409",
    "StateConflict": "409",
    "PayloadTooLarge": "413",
    "RateLimited": "429",
    "AnswerFailed": "502",
}


def _operation(
    summary: str,
    scope: str | None,
    ok: dict,
    *,
    errors=(),
    parameters=(),
    body: str | None = None,
    description: str = "",
) -> dict:
    operation = {"summary": summary, "operationId": summary.title().replace(" ", "").replace("'", "")}
    if description:
        operation["description"] = description
    if scope is None:
        operation["security"] = []
    else:
        operation["x-scope"] = scope
        errors = ("Unauthorized", "Forbidden", "RateLimited", *errors)
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    operation["responses"] = {**ok}
    for name in errors:
        operation["responses"][ERROR_STATUS[name]] = _error(name)
    return operation


ASSISTANT_ID = _path_id("assistant_id", "assistant")
DOCUMENT_ID = _path_id("document_id", "document")


def _query(name: str, schema: dict, description: str = "") -> dict:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


PAGE_PARAMETERS = [
    _query("cursor", {"type": "string"}, "next_cursor of the previous page."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
]
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        }
    },
}
SOURCE_ID = _path_id("source_id", "source")
CONVERSATION_ID = _path_id("conversation_id", "conversation")
WRITE_ERRORS = ("Invalid", "NotFound", "PayloadTooLarge")

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "Chatsite API",
        "version": "1",
        "description": (
            "Manage a team's assistants, their sources and conversations, and ask them questions.\n\n"
            "Authenticate with a team API key: `Authorization: Bearer cs_<prefix>_<secret>`. A key has scopes: "
            "read (GET), write (create, update, delete, crawl) and chat. Every object is scoped to the key's team; "
            "another team's ids answer 404. Each key may make API_RATE_LIMIT_PER_MINUTE requests a minute (120 by "
            "default). Every error has the shape of the Error schema."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"apiKey": []}],
    "paths": {
        "/assistants": {
            "get": _operation(
                "List assistants", "read", {"200": _json(_ref("AssistantList"), "The team's assistants, by name.")}
            ),
            "post": _operation(
                "Create an assistant",
                "write",
                {"201": _json(_ref("Assistant"), "The new assistant.")},
                errors=("Invalid", "Conflict", "PayloadTooLarge"),
                parameters=[IDEMPOTENCY_KEY],
                body="AssistantInput",
            ),
        },
        "/assistants/{assistant_id}": {
            "get": _operation(
                "Get an assistant",
                "read",
                {"200": _json(_ref("Assistant"), "The assistant.")},
                errors=("NotFound",),
                parameters=[ASSISTANT_ID],
            ),
            "patch": _operation(
                "Update an assistant",
                "write",
                {"200": _json(_ref("Assistant"), "The updated assistant.")},
                errors=WRITE_ERRORS,
                parameters=[ASSISTANT_ID],
                body="AssistantInput",
            ),
            "delete": _operation(
                "Delete an assistant",
                "write",
                {"204": {"description": "Deleted, with its sources and conversations."}},
                errors=("NotFound",),
                parameters=[ASSISTANT_ID],
            ),
        },
        "/assistants/{assistant_id}/sources": {
            "get": _operation(
                "List sources",
                "read",
                {"200": _json(_ref("SourceList"), "The assistant's sources, newest first.")},
                errors=("NotFound",),
                parameters=[ASSISTANT_ID],
            ),
            "post": _operation(
                "Add a website",
                "write",
                {"201": _json(_ref("SourceWithProgress"), "The new source; its first crawl is queued.")},
                errors=(*WRITE_ERRORS, "Conflict"),
                parameters=[ASSISTANT_ID, IDEMPOTENCY_KEY],
                body="SourceInput",
            ),
        },
        "/sources/{source_id}": {
            "get": _operation(
                "Get a source",
                "read",
                {"200": _json(_ref("SourceWithProgress"), "The source and its crawl's progress.")},
                errors=("NotFound",),
                parameters=[SOURCE_ID],
            ),
        },
        "/sources/{source_id}/crawl": {
            "post": _operation(
                "Crawl a source",
                "write",
                {"202": _json(_ref("SourceWithProgress"), "The crawl is queued (or was already under way).")},
                errors=("Invalid", "NotFound"),
                parameters=[SOURCE_ID],
            ),
        },
        "/assistants/{assistant_id}/documents": {
            "get": _operation(
                "List documents",
                "read",
                {"200": _json(_ref("DocumentPage"), "The assistant's web pages and uploaded files, newest first.")},
                errors=("Invalid", "NotFound"),
                parameters=[
                    ASSISTANT_ID,
                    _query("status", {"type": "string", "enum": ["pending", "ready", "failed"]}),
                    *PAGE_PARAMETERS,
                ],
            ),
            "post": {
                **_operation(
                    "Upload documents",
                    "write",
                    {"202": _json(_ref("DocumentUpload"), "Stored; each file is parsed and indexed by a worker.")},
                    errors=WRITE_ERRORS,
                    parameters=[ASSISTANT_ID],
                    description="PDF, DOCX, PPTX, XLSX, CSV, Markdown, HTML or text, as one or more multipart "
                    "'file' parts (API_UPLOAD_MAX_FILES per request). A file over UPLOAD_MAX_BYTES refuses the "
                    "request with 413 and stores nothing; a file that cannot be parsed fails on its own, with its "
                    "reason in the document's error.",
                ),
                "requestBody": UPLOAD_BODY,
            },
        },
        "/assistants/{assistant_id}/documents/url": {
            "post": _operation(
                "Add a document by its address",
                "write",
                {
                    "202": _json(
                        _ref("Document"),
                        "Queued: a worker downloads it through the SSRF-safe client, then parses and indexes it; "
                        "citations open the address. The same address again downloads it anew. A YouTube video's "
                        "address (watch, youtu.be, shorts, embed, live) adds its transcript, cited at the moment "
                        "quoted (watch?v=ID&t=SECONDSs); a video without captions fails with the reason.",
                    )
                },
                errors=(*WRITE_ERRORS, "Conflict"),
                parameters=[ASSISTANT_ID, IDEMPOTENCY_KEY],
                body="DocumentUrlInput",
            ),
        },
        "/assistants/{assistant_id}/qa": {
            "post": _operation(
                "Add a Q&A pair",
                "write",
                {
                    "201": _json(
                        _ref("Document"), "The pair, as a document of the assistant's Q&A source; queued for indexing."
                    )
                },
                errors=(*WRITE_ERRORS, "Conflict"),
                parameters=[ASSISTANT_ID, IDEMPOTENCY_KEY],
                body="QAInput",
            ),
        },
        "/documents/{document_id}": {
            "get": _operation(
                "Get a document",
                "read",
                {"200": _json(_ref("Document"), "The document.")},
                errors=("NotFound",),
                parameters=[DOCUMENT_ID],
            ),
            "delete": _operation(
                "Delete a document",
                "write",
                {"204": {"description": "Deleted with its chunks: it is no longer cited."}},
                errors=("NotFound",),
                parameters=[DOCUMENT_ID],
            ),
        },
        "/documents/{document_id}/reindex": {
            "post": _operation(
                "Reindex a document",
                "write",
                {
                    "202": _json(
                        _ref("Document"), "Queued: an upload is parsed again, a page re-embedded from its text."
                    )
                },
                errors=("NotFound",),
                parameters=[DOCUMENT_ID],
            ),
        },
        "/assistants/{assistant_id}/feedback": {
            "get": _operation(
                "List feedback",
                "read",
                {"200": _json(_ref("FeedbackPage"), "Ratings of answers and contact requests, newest first.")},
                errors=("Invalid", "NotFound"),
                parameters=[
                    ASSISTANT_ID,
                    _query("kind", {"type": "string", "enum": ["rating", "contact"]}),
                    *PAGE_PARAMETERS,
                ],
            ),
        },
        **{
            f"/sources/{{source_id}}/{action}": {
                "post": _operation(
                    f"{action.title()} a crawl",
                    "write",
                    {"200": _json(_ref("SourceWithProgress"), done)},
                    errors=("NotFound", "StateConflict"),
                    parameters=[SOURCE_ID],
                )
            }
            for action, done in (
                ("pause", "Paused: the crawl stops after the page it is fetching."),
                ("resume", "Queued again; pages already stored cost one request each."),
                ("cancel", "Cancelled; the pages stored so far stay."),
            )
        },
        "/assistants/{assistant_id}/conversations": {
            "get": _operation(
                "List conversations",
                "read",
                {"200": _json(_ref("ConversationPage"), "Conversations, most recently active first.")},
                errors=("Invalid", "NotFound"),
                parameters=[
                    ASSISTANT_ID,
                    *PAGE_PARAMETERS,
                    _query("since", TIMESTAMP, "Active at or after this time (ISO 8601)."),
                    _query("until", TIMESTAMP, "Last active before this time (ISO 8601)."),
                    _query(
                        "unanswered",
                        {"type": "boolean"},
                        "true: only conversations with a question the content could not answer (the content gaps).",
                    ),
                    _query(
                        "rating",
                        {"type": "string", "enum": ["up", "down"]},
                        "Only conversations with an answer rated so.",
                    ),
                ],
            ),
        },
        "/assistants/{assistant_id}/conversations/export": {
            "get": _operation(
                "Export conversations",
                "read",
                {
                    "200": {
                        "description": "Streamed, one JSON object per line (jsonl) or a header and one row per message "
                        "(csv), conversation by conversation: conversation_id, created_at, role, text, citations "
                        "(an array of Citation; in CSV as JSON), page_url.",
                        "content": {
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                errors=("Invalid", "NotFound"),
                parameters=[
                    ASSISTANT_ID,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"},
                    },
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "schema": TIMESTAMP,
                            "description": f"Only messages created {when} this ISO 8601 date-time.",
                        }
                        for name, when in (("since", "at or after"), ("until", "before"))
                    ),
                ],
            ),
        },
        "/conversations/{conversation_id}": {
            "get": _operation(
                "Get a conversation",
                "read",
                {"200": _json(_ref("ConversationWithMessages"), "The conversation and its messages.")},
                errors=("NotFound",),
                parameters=[CONVERSATION_ID],
            ),
        },
        "/assistants/{assistant_id}/chat": {
            "post": _operation(
                "Ask a question",
                "chat",
                {
                    "200": {
                        "description": "The answer: JSON, or with stream=true Server-Sent Events exactly like the public chat "
                        "(meta {conversation_id}, token {text}…, citations {citations, html}, error {kind, message}, done {message_id}).",
                        "content": {
                            "application/json": {"schema": _ref("ChatAnswer")},
                            "text/event-stream": {"schema": _ref("ChatEvent")},
                        },
                    }
                },
                errors=("Invalid", "NotFound", "PayloadTooLarge", "AnswerFailed"),
                parameters=[ASSISTANT_ID],
                body="ChatInput",
                description="Conversations started with a key are listed like the others; only that key can continue them.",
            ),
        },
        "/openapi.json": {
            "get": _operation("Get this document", None, {"200": _json({"type": "object"}, "The OpenAPI document.")}),
        },
        "/docs": {
            "get": _operation(
                "Read the documentation",
                None,
                {
                    "200": {
                        "description": "This document as HTML.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            ),
        },
    },
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "A team API key, cs_<prefix>_<secret>."}
        },
        "schemas": SCHEMAS,
        "responses": ERROR_RESPONSES,
    },
}


# The HTML page


def _type(schema: dict):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return format_html('<a href="#schema-{}">{}</a>', name, name)
    kind = schema.get("type", "object")
    kind = " | ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        return format_html("array of {}", _type(schema.get("items", {})))
    extras = [
        f"one of {', '.join('null' if value is None else str(value) for value in schema['enum'])}"
        if "enum" in schema
        else "",
        schema.get("format", ""),
        schema.get("pattern", ""),
    ]
    return format_html("{}{}", kind, "".join(f" ({extra})" for extra in extras if extra))


def _fields(schema: dict):
    """A table of an object schema's properties (and those of the schemas it extends)."""
    rows = []
    for parent in schema.get("allOf", []):
        rows.append(format_html('<tr><td colspan="3">Every field of {}, and:</td></tr>', _type(parent)))
    required = set(schema.get("required", []))
    rows += [
        format_html(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>",
            name,
            _type(field),
            "required. " if name in required else "",
            field.get("description", ""),
        )
        for name, field in schema.get("properties", {}).items()
    ]
    if not rows:
        return _type(schema)
    return format_html(
        "<table><tr><th>Field</th><th>Type</th><th>Notes</th></tr>{}</table>",
        format_html_join("", "{}", ((row,) for row in rows)),
    )


def _response_line(status: str, response: dict):
    if "$ref" in response:
        response = ERROR_RESPONSES[response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content", {})
    schemas = format_html_join(", ", "{} {}", ((media, _type(body["schema"])) for media, body in content.items()))
    return format_html("<li><b>{}</b> {} {}</li>", status, response["description"], schemas)


def _operation_html(method: str, path: str, operation: dict):
    parameters = format_html_join(
        "",
        "<li><code>{}</code> ({}{}) {} {}</li>",
        (
            (
                p["name"],
                p["in"],
                ", required" if p.get("required") else "",
                _type(p["schema"]),
                p.get("description", ""),
            )
            for p in operation.get("parameters", [])
        ),
    )
    body = operation.get("requestBody")
    return format_html(
        '<section id="{}"><h3><code>{} /api/v1{}</code> {}</h3>{}<p>Scope: {}</p>{}{}<h4>Responses</h4><ul>{}</ul></section>',
        operation["operationId"],
        method.upper(),
        path,
        operation["summary"],
        format_html("<p>{}</p>", operation["description"]) if "description" in operation else "",
        operation.get("x-scope", "none (public)"),
        format_html("<h4>Parameters</h4><ul>{}</ul>", parameters) if parameters else "",
        format_html_join(
            "",
            "<h4>Body ({})</h4>{}",
            ((media, _type(content["schema"])) for media, content in (body or {}).get("content", {}).items()),
        ),
        format_html_join(
            "",
            "{}",
            ((_response_line(status, response),) for status, response in sorted(operation["responses"].items())),
        ),
    )


def docs_html(document: dict = OPENAPI) -> str:
    """The document as one self-contained HTML page: the operations, then the schemas they use."""
    operations = format_html_join(
        "",
        "{}",
        (
            (_operation_html(method, path, operation),)
            for path, item in document["paths"].items()
            for method, operation in item.items()
        ),
    )
    errors = format_html_join(
        "",
        "<li><b>{}</b> {}</li>",
        ((ERROR_STATUS[name], response["description"]) for name, response in ERROR_RESPONSES.items()),
    )
    schemas = format_html_join(
        "",
        '<section id="schema-{}"><h3>{}</h3><p>{}</p>{}</section>',
        (
            (name, name, schema.get("description", ""), _fields(schema))
            for name, schema in document["components"]["schemas"].items()
        ),
    )
    return format_html(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{} v{}</title>'
        "<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}"
        "section{{border-top:1px solid #ddd}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}}</style>"
        '</head><body><h1>{} v{}</h1><p>{}</p><p><a href="openapi.json">openapi.json</a></p>'
        "<h2>Operations</h2>{}<h2>Errors</h2><p>Every error has the shape of the "
        '<a href="#schema-Error">Error</a> schema.</p><ul>{}</ul><h2>Schemas</h2>{}</body></html>',
        document["info"]["title"],
        document["info"]["version"],
        document["info"]["title"],
        document["info"]["version"],
        document["info"]["description"],
        operations,
        errors,
        schemas,
    )
