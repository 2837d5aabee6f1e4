"""The API's resources. Every read goes through the key's team (another team's id is a 404) and
every write through the same services and forms as the dashboard."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from assistants import selectors as assistant_selectors
from assistants import services
from assistants.answering.pipeline import MAX_QUESTION_CHARS, answer_events
from assistants.api import selectors
from assistants.api.export import FORMATS, export_lines, parse_bound
from assistants.api.http import ApiError, api_view, fields_invalid, invalid, not_found
from assistants.api.schema import OPENAPI, docs_html
from assistants.forms import AssistantBrandingForm, WebsiteSourceForm
from assistants.models import ApiKey, Assistant, Conversation, Feedback
from ingestion import services as ingestion_services
from ingestion.models import Document, Source
from ingestion.selectors import source_progress
from ingestion.spaces import space_drop

# The dashboard form's fields (AssistantBrandingForm), as the API reads and writes them.
ASSISTANT_FIELDS = [
    "name",
    "greeting",
    "system_prompt",
    "primary_color",
    "background_color",
    "allowed_domains",
    "avatar_url",
    "logo_url",
    "launcher_position",
    "launcher_icon",
    "theme",
    "suggested_questions",
    "show_powered_by",
    "language",
    "llm_provider",
    "llm_model",
    "llm_base_url",
    "reranker_model",
]
LIST_FIELDS = {
    "allowed_domains": "Expected a list of host names.",
    "suggested_questions": "Expected a list of questions.",
}
SOURCE_FIELDS = {"kind", "url", "max_pages", "max_depth", "schedule", "render_javascript"}


# Representations


def assistant_json(assistant: Assistant) -> dict:
    return {
        "id": assistant.pk,
        "slug": assistant.slug,
        "public_key": assistant.public_key,
        **{name: getattr(assistant, name) for name in ASSISTANT_FIELDS},
        "internal": bool(assistant.access_code_hash),
        "created_at": assistant.created_at.isoformat(),
    }


def source_json(source: Source, *, progress: bool = False) -> dict:
    data = {
        "id": source.pk,
        "assistant_id": source.assistant_id,
        "kind": source.kind,
        "name": source.name,
        "url": source.url,
        "schedule": source.schedule,
        "settings": source.settings,
        "status": source.status,
        "error": source.error,
        "created_at": source.created_at.isoformat(),
    }
    if progress:
        data["progress"] = source_progress(source=source)
    return data


def document_json(document: Document) -> dict:
    return {
        "id": document.pk,
        "source_id": document.source_id,
        "url": document.url,
        "title": document.title,
        "file_name": document.file_name,
        "status": document.status,
        "error": document.error,
        "warnings": document.warnings,
        "chunk_count": document.chunk_count,
        "created_at": document.created_at.isoformat(),
        "updated_at": document.updated_at.isoformat(),
    }


def feedback_json(feedback: Feedback) -> dict:
    return {
        "id": feedback.pk,
        "conversation_id": feedback.conversation_id,
        "message_id": feedback.message_id,
        "kind": feedback.kind,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "details": feedback.details,
        "created_at": feedback.created_at.isoformat(),
    }


def conversation_json(conversation: Conversation, *, messages: bool = False) -> dict:
    data = {
        "id": conversation.pk,
        "assistant_id": conversation.assistant_id,
        "page_url": conversation.page_url,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }
    if messages:
        data["messages"] = assistant_selectors.conversation_messages(conversation=conversation)
    return data


def _form_errors(form) -> ApiError:
    details = {field: [error["message"] for error in errors] for field, errors in form.errors.get_json_data().items()}
    return fields_invalid(details)


def _refuse_unknown(payload: dict, known) -> None:
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise invalid(f"Unknown fields: {', '.join(unknown)}.", {name: ["Unknown field."] for name in unknown})


def _require_bool(data: dict, name: str) -> None:
    """JSON true/false only: the form's checkbox field would take any value as "on"."""
    if not isinstance(data.get(name, False), bool):
        raise fields_invalid({name: ["Expected true or false."]})


# Assistants


def _assistant_form(payload: dict, instance: Assistant) -> AssistantBrandingForm:
    """The dashboard's form over the instance's values with the payload on top (PATCH is partial).

    ``access_code`` is write-only: a string sets it, null removes it, absent keeps it."""
    _refuse_unknown(payload, [*ASSISTANT_FIELDS, "access_code"])
    data = {name: getattr(instance, name) for name in ASSISTANT_FIELDS} | payload
    for name, message in LIST_FIELDS.items():
        values = data[name]
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise fields_invalid({name: [message]})
        data[name] = "\n".join(values)
    _require_bool(data, "show_powered_by")
    code = payload.get("access_code", "")
    if code is not None and not isinstance(code, str):
        raise fields_invalid({"access_code": ["Expected a string or null."]})
    data["access_code"], data["clear_access_code"] = code or "", code is None
    form = AssistantBrandingForm(data=data, instance=instance)
    if not form.is_valid():
        raise _form_errors(form)
    return form


@api_view(scope="read", methods=["GET"])
def assistant_list(request):
    assistants = selectors.assistants_for_team(team=request.api_key.team)
    return JsonResponse({"data": [assistant_json(assistant) for assistant in assistants]})


@api_view(scope="write", methods=["POST"], idempotent=True)
def assistant_create(request):
    fields, access = _assistant_form(request.json, Assistant()).split()
    assistant = services.assistant_create(team=request.api_key.team, access=access, **fields)
    return JsonResponse(assistant_json(assistant), status=201)


@api_view(scope="read", methods=["GET"])
def assistant_detail(request, assistant_id: int):
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    return JsonResponse(assistant_json(assistant))


@api_view(scope="write", methods=["PATCH"])
def assistant_update(request, assistant_id: int):
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    fields, access = _assistant_form(request.json, assistant).split()
    assistant = services.assistant_update(assistant=assistant, access=access, **fields)
    return JsonResponse(assistant_json(assistant))


@api_view(scope="write", methods=["DELETE"])
def assistant_delete(request, assistant_id: int):
    """The assistant and everything it holds: sources, conversations, and its chunk partitions."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    with transaction.atomic():
        for space in assistant.spaces.all():
            space_drop(space=space)
        assistant.delete()
    return HttpResponse(status=204)


# Sources


@api_view(scope="read", methods=["GET"])
def source_list(request, assistant_id: int):
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    return JsonResponse(
        {"data": [source_json(source) for source in selectors.sources_for_assistant(assistant=assistant)]}
    )


@api_view(scope="write", methods=["POST"], idempotent=True)
def source_create(request, assistant_id: int):
    """A website source, validated like the dashboard's form, and its first crawl queued."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    payload = request.json
    _refuse_unknown(payload, SOURCE_FIELDS)
    if payload.get("kind", "website") != Source.Kind.WEBSITE:
        raise fields_invalid({"kind": ["Only 'website' sources can be created here."]})
    _require_bool(payload, "render_javascript")
    defaults = {name: WebsiteSourceForm.base_fields[name].initial for name in ("max_pages", "max_depth")}
    form = WebsiteSourceForm(data=defaults | {name: value for name, value in payload.items() if name != "kind"})
    if not form.is_valid():
        raise _form_errors(form)
    try:
        source = ingestion_services.source_create_website(assistant=assistant, **form.cleaned_data)
    except ingestion_services.IngestionError as exc:
        raise ApiError(400, "validation_failed", str(exc), {"url": [str(exc)]}) from None
    ingestion_services.source_crawl_start(source=source)
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source.pk)
    return JsonResponse(source_json(source, progress=True), status=201)


@api_view(scope="read", methods=["GET"])
def source_detail(request, source_id: int):
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source_id)
    return JsonResponse(source_json(source, progress=True))


@api_view(scope="write", methods=["POST"])
def source_crawl(request, source_id: int):
    """Queue a crawl, or return the one under way: calling it twice starts one crawl."""
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source_id)
    if source.kind != Source.Kind.WEBSITE:
        raise invalid("Only website sources are crawled.")
    ingestion_services.source_crawl_start(source=source)
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source_id)
    return JsonResponse(source_json(source, progress=True), status=202)


def _source_control(request, source_id: int, control) -> JsonResponse:
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source_id)
    try:
        control(source=source)
    except ingestion_services.IngestionError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source_id)
    return JsonResponse(source_json(source, progress=True))


@api_view(scope="write", methods=["POST"])
def source_pause(request, source_id: int):
    return _source_control(request, source_id, ingestion_services.run_pause)


@api_view(scope="write", methods=["POST"])
def source_resume(request, source_id: int):
    return _source_control(request, source_id, ingestion_services.run_resume)


@api_view(scope="write", methods=["POST"])
def source_cancel(request, source_id: int):
    return _source_control(request, source_id, ingestion_services.run_cancel)


# Documents


def newest_first_response(request, queryset, to_json) -> JsonResponse:
    """One page of ``queryset``, newest first, after the request's ``cursor``, with the next cursor."""
    page, next_cursor = selectors.newest_first_page(
        queryset, cursor=request.GET.get("cursor"), limit=selectors.page_size(request.GET.get("limit"))
    )
    return JsonResponse({"data": [to_json(item) for item in page], "next_cursor": next_cursor})


@api_view(scope="read", methods=["GET"])
def document_list(request, assistant_id: int):
    """The assistant's documents (web pages and uploads), newest first, optionally of one status."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    documents = selectors.documents_for_assistant(assistant=assistant, status=request.GET.get("status"))
    return newest_first_response(request, documents, document_json)


@api_view(scope="write", methods=["POST"], body="files")
def document_upload(request, assistant_id: int):
    """Files as multipart ``file`` parts, stored and queued exactly like the dashboard's uploads.

    A file over UPLOAD_MAX_BYTES refuses the whole request with 413, storing nothing.
    """
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    files = request.FILES.getlist("file")
    if not files:
        raise fields_invalid({"file": ["Send one or more files."]})
    if len(files) > settings.API_UPLOAD_MAX_FILES:
        raise fields_invalid({"file": [f"At most {settings.API_UPLOAD_MAX_FILES} files per request."]})
    too_large = [upload.name for upload in files if upload.size > settings.UPLOAD_MAX_BYTES]
    if too_large:
        raise ApiError(
            413,
            "payload_too_large",
            f"Each file may be at most {settings.UPLOAD_MAX_BYTES} bytes.",
            {"files": too_large, "max_file_bytes": settings.UPLOAD_MAX_BYTES},
        )
    source = ingestion_services.source_documents_get_or_create(assistant=assistant)
    run = ingestion_services.documents_upload(source=source, files=files)
    source = selectors.source_get_for_team(team=request.api_key.team, source_id=source.pk)
    documents = Document.objects.filter(last_run=run).order_by("id")
    return JsonResponse(
        {"source": source_json(source, progress=True), "documents": [document_json(d) for d in documents]},
        status=202,
    )


@api_view(scope="write", methods=["POST"], idempotent=True)
def document_add_url(request, assistant_id: int):
    """A document the worker downloads from its address (through the SSRF-safe client) and indexes."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    payload = request.json
    _refuse_unknown(payload, {"url"})
    if not isinstance(payload.get("url"), str):
        raise fields_invalid({"url": ["A string is required."]})
    try:
        document = ingestion_services.document_add_url(assistant=assistant, url=payload["url"])
    except ingestion_services.IngestionError as exc:
        raise ApiError(400, "validation_failed", str(exc), {"url": [str(exc)]}) from None
    return JsonResponse(document_json(document), status=202)


@api_view(scope="write", methods=["POST"], idempotent=True)
def qa_create(request, assistant_id: int):
    """A Q&A pair (or a snippet: a title and its text), indexed by a worker and cited like a page."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    payload = request.json
    _refuse_unknown(payload, {"question", "answer"})
    errors = {
        name: ["A non-empty string is required."]
        for name in ("question", "answer")
        if not isinstance(payload.get(name), str) or not payload[name].strip()
    }
    if errors:
        raise fields_invalid(errors)
    try:
        document = ingestion_services.qa_add(
            assistant=assistant, question=payload["question"], answer=payload["answer"]
        )
    except ingestion_services.IngestionError as exc:
        raise ApiError(400, "validation_failed", str(exc), {"answer": [str(exc)]}) from None
    return JsonResponse(document_json(document), status=201)


@api_view(scope="read", methods=["GET"])
def document_detail(request, document_id: int):
    return JsonResponse(
        document_json(selectors.document_get_for_team(team=request.api_key.team, document_id=document_id))
    )


@api_view(scope="write", methods=["DELETE"])
def document_delete(request, document_id: int):
    """The document and its chunks: the assistant stops citing it at once."""
    document = selectors.document_get_for_team(team=request.api_key.team, document_id=document_id)
    ingestion_services.document_delete(document=document)
    return HttpResponse(status=204)


@api_view(scope="write", methods=["POST"])
def document_reindex(request, document_id: int):
    document = selectors.document_get_for_team(team=request.api_key.team, document_id=document_id)
    ingestion_services.document_reindex(document=document)
    document.refresh_from_db()
    return JsonResponse(document_json(document), status=202)


# Feedback


@api_view(scope="read", methods=["GET"])
def feedback_list(request, assistant_id: int):
    """Ratings of answers and contact requests, newest first (``kind`` = rating or contact)."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    feedback = selectors.feedback_for_assistant(assistant=assistant, kind=request.GET.get("kind"))
    return newest_first_response(request, feedback, feedback_json)


# Conversations


@api_view(scope="read", methods=["GET"])
def conversation_list(request, assistant_id: int):
    """The assistant's conversations, most recently active first; filtered by activity time, content
    gaps (``unanswered``) and ratings."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    limit = selectors.page_size(request.GET.get("limit"))
    filters = _time_bounds(request)
    flags = {"true": True, "false": False}
    if "unanswered" in request.GET:
        if request.GET["unanswered"] not in flags:
            raise invalid("unanswered must be true or false.", {"parameter": "unanswered"})
        filters["unanswered"] = flags[request.GET["unanswered"]]
    if "rating" in request.GET:
        if request.GET["rating"] not in ("up", "down"):
            raise invalid("rating must be up or down.", {"parameter": "rating"})
        filters["rating"] = 1 if request.GET["rating"] == "up" else -1
    page, next_cursor = selectors.conversations_page(
        assistant=assistant, cursor=request.GET.get("cursor"), limit=limit, **filters
    )
    return JsonResponse(
        {"data": [conversation_json(conversation) for conversation in page], "next_cursor": next_cursor}
    )


def _time_bounds(request) -> dict:
    """``since`` and ``until`` from the query string, as aware UTC date-times (absent: None)."""
    bounds = {}
    for name in ("since", "until"):
        try:
            bounds[name] = parse_bound(request.GET.get(name))
        except ValueError:
            raise invalid(f"{name} must be an ISO 8601 date-time.", {"parameter": name}) from None
    return bounds


@api_view(scope="read", methods=["GET"])
def conversation_export(request, assistant_id: int):
    """Every message of the assistant's conversations, streamed as JSONL or CSV (``format``)."""
    assistant = selectors.assistant_get_for_team(team=request.api_key.team, assistant_id=assistant_id)
    export_format = request.GET.get("format", "jsonl")
    if export_format not in FORMATS:
        raise invalid(f"format must be one of {', '.join(FORMATS)}.", {"parameter": "format"})
    rows = selectors.conversation_export_rows(assistant=assistant, **_time_bounds(request))
    response = StreamingHttpResponse(export_lines(rows, export_format), content_type=FORMATS[export_format])
    response["Content-Disposition"] = f'attachment; filename="{assistant.slug}-conversations.{export_format}"'
    return response


@api_view(scope="read", methods=["GET"])
def conversation_detail(request, conversation_id: int):
    conversation = selectors.conversation_get_for_team(team=request.api_key.team, conversation_id=conversation_id)
    return JsonResponse(conversation_json(conversation, messages=True))


# Chat


def api_visitor_token(key: ApiKey) -> str:
    """The visitor token of a key's conversations: they list like any other, and only it resumes them."""
    return f"api:{key.prefix}"


def _chat_conversation(key: ApiKey, assistant_id: int, conversation_id) -> tuple[Assistant, Conversation]:
    assistant = selectors.assistant_get_for_team(team=key.team, assistant_id=assistant_id)
    token = api_visitor_token(key)
    if (
        conversation_id is not None
        and not Conversation.objects.filter(pk=conversation_id, assistant=assistant, visitor_token=token).exists()
    ):
        raise not_found("conversation")
    conversation = services.conversation_for_visitor(
        assistant=assistant, visitor_token=token, conversation_id=conversation_id
    )
    return assistant, conversation


def _chat_payload(payload: dict) -> tuple[str, int | None, bool]:
    _refuse_unknown(payload, {"question", "conversation_id", "stream"})
    errors = {}
    question = payload.get("question")
    if not isinstance(question, str) or not question.strip():
        errors["question"] = ["A non-empty string is required."]
    elif len(question) > MAX_QUESTION_CHARS:
        errors["question"] = [f"At most {MAX_QUESTION_CHARS} characters."]
    conversation_id = payload.get("conversation_id")
    if conversation_id is not None and (type(conversation_id) is not int or conversation_id < 1):
        errors["conversation_id"] = ["Expected the id of a conversation this key started."]
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        errors["stream"] = ["Expected true or false."]
    if errors:
        raise fields_invalid(errors)
    return question.strip(), conversation_id, stream


@api_view(scope="chat", methods=["POST"])
async def chat(request, assistant_id: int):
    """Answer a question, as Server-Sent Events (``stream``) exactly like the public chat, or as JSON."""
    question, conversation_id, stream = _chat_payload(request.json)
    assistant, conversation = await sync_to_async(_chat_conversation)(request.api_key, assistant_id, conversation_id)
    events = answer_events(assistant=assistant, conversation=conversation, question=question)
    if stream:

        async def body():
            async for event in events:
                yield event.sse()

        response = StreamingHttpResponse(body(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
    parts, citations, error, message_id = [], [], None, None
    async for event in events:
        if event.name == "token":
            parts.append(event.data["text"])
        elif event.name == "citations":
            citations = event.data["citations"]
        elif event.name == "error":
            error = event.data
        elif event.name == "done":
            message_id = event.data["message_id"]
    if error is not None:
        raise ApiError(
            502,
            "answer_failed",
            error["message"],
            {
                "kind": error["kind"],
                "conversation_id": conversation.pk,
                "message_id": message_id,
                "partial_answer": "".join(parts),
            },
        )
    return JsonResponse(
        {"conversation_id": conversation.pk, "answer": "".join(parts), "citations": citations, "message_id": message_id}
    )


# The description of all this


@api_view(scope=None, methods=["GET"])
def openapi_json(request):
    return JsonResponse(OPENAPI)


@api_view(scope=None, methods=["GET"])
def docs(request):
    return HttpResponse(docs_html())
