"""The API's resources, as django-ninja operations over typed schemas (:mod:`assistants.api.schemas`).

Every read goes through the key's team (another team's id is a 404), every write through the same
services and forms as the dashboard. An operation's scope is its ``auth`` (:class:`TeamKey`); the
refusals its shape implies (401/403/429, 404 for an id, 400/413 for a body, …) are documented by
:class:`assistants.api.openapi.Api`, those particular to it by :func:`responds`.
"""

from typing import Annotated

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from ninja import File, Query, Router, Status, UploadedFile

from assistants import services
from assistants.answering.admission import STREAM_RETRY_AFTER, release_stream_places, stream_places
from assistants.answering.pipeline import answer_events, ended_cleanly
from assistants.api import schemas, selectors
from assistants.api.export import FORMATS, export_lines
from assistants.api.http import ApiError, IdempotencyKey, TeamKey, fields_invalid, idempotent, invalid, not_found
from assistants.api.openapi import responds
from assistants.forms import AssistantBrandingForm, WebsiteSourceForm
from assistants.leads import services as lead_services
from assistants.models import ApiKey, Assistant, Conversation
from ingestion import services as ingestion_services
from ingestion.models import Document, Source

READ, WRITE, CHAT = ApiKey.Scope.READ, ApiKey.Scope.WRITE, ApiKey.Scope.CHAT

router = Router()


def _form_errors(form) -> ApiError:
    return fields_invalid(
        {field: [error["message"] for error in errors] for field, errors in form.errors.get_json_data().items()}
    )


# Assistants

ASSISTANT_FIELDS = [name for name in schemas.AssistantFields.model_fields if name != "access_code"]


def _assistant_form(payload: schemas.AssistantFields, instance: Assistant) -> AssistantBrandingForm:
    """The dashboard's form over the instance's values with the fields sent on top (PATCH is partial).

    ``access_code`` is write-only: a string sets it, null removes it, absent keeps it."""
    sent = payload.model_dump(exclude_unset=True)
    data = {name: getattr(instance, name) for name in ASSISTANT_FIELDS} | sent
    for name in ("allowed_domains", "suggested_questions"):  # the form's text areas: one per line
        data[name] = "\n".join(data[name] or [])
    code = sent.pop("access_code", "")
    data["access_code"], data["clear_access_code"] = code or "", code is None
    form = AssistantBrandingForm(data=data, instance=instance)
    if not form.is_valid():
        raise _form_errors(form)
    return form


@router.get(
    "/assistants",
    auth=TeamKey(READ),
    response=schemas.AssistantList,
    summary="List assistants",
    tags=["Assistants"],
    openapi_extra=responds(200, "The team's assistants, by name."),
)
def assistant_list(request):
    return {"data": selectors.assistants_for_team(team=request.auth.team)}


@router.post(
    "/assistants",
    auth=TeamKey(WRITE),
    response={201: schemas.Assistant},
    summary="Create an assistant",
    tags=["Assistants"],
    openapi_extra=responds(201, "The new assistant, ready for sources."),
)
@idempotent
def assistant_create(request, payload: schemas.AssistantCreate, idempotency_key: IdempotencyKey = None):
    """Creates an assistant in the key's team with the dashboard's defaults for what is not sent."""
    fields, access = _assistant_form(payload, Assistant()).split()
    assistant = services.assistant_create(team=request.auth.team, access=access, **fields)
    return Status(201, schemas.Assistant.model_validate(assistant))


@router.get(
    "/assistants/{int:assistant_id}",
    auth=TeamKey(READ),
    response=schemas.Assistant,
    summary="Get an assistant",
    tags=["Assistants"],
    openapi_extra=responds(200, "The assistant."),
)
def assistant_detail(request, assistant_id: schemas.AssistantId):
    return selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)


@router.patch(
    "/assistants/{int:assistant_id}",
    auth=TeamKey(WRITE),
    response=schemas.Assistant,
    summary="Update an assistant",
    tags=["Assistants"],
    openapi_extra=responds(200, "The assistant as updated."),
)
def assistant_update(request, assistant_id: schemas.AssistantId, payload: schemas.AssistantUpdate):
    """Changes the fields sent and nothing else. The types and choices are checked first, then the
    dashboard form's rules (http(s) addresses, host names, a reranker this server can run)."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    fields, access = _assistant_form(payload, assistant).split()
    return services.assistant_update(assistant=assistant, access=access, **fields)


@router.delete(
    "/assistants/{int:assistant_id}",
    auth=TeamKey(WRITE),
    response={204: None},
    summary="Delete an assistant",
    tags=["Assistants"],
    openapi_extra=responds(204, "Deleted, with its sources, documents and conversations."),
)
def assistant_delete(request, assistant_id: schemas.AssistantId):
    """The assistant and everything it holds: sources, conversations, and its chunk partitions."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    services.assistant_delete(assistant=assistant)
    return Status(204, None)


# Sources


@router.get(
    "/assistants/{int:assistant_id}/sources",
    auth=TeamKey(READ),
    response=schemas.SourceList,
    summary="List sources",
    tags=["Sources"],
    openapi_extra=responds(200, "The assistant's sources, newest first."),
)
def source_list(request, assistant_id: schemas.AssistantId):
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    return {"data": selectors.sources_for_assistant(assistant=assistant)}


@router.post(
    "/assistants/{int:assistant_id}/sources",
    auth=TeamKey(WRITE),
    response={201: schemas.SourceWithProgress},
    summary="Add a website",
    tags=["Sources"],
    openapi_extra=responds(201, "The new source; its first crawl is queued."),
)
@idempotent
def source_create(
    request, assistant_id: schemas.AssistantId, payload: schemas.SourceCreate, idempotency_key: IdempotencyKey = None
):
    """A website source, validated like the dashboard's form, and its first crawl queued."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    form = WebsiteSourceForm(data=payload.model_dump(exclude={"kind", "crawl"}))
    if not form.is_valid():
        raise _form_errors(form)
    try:
        source = ingestion_services.source_create_website(assistant=assistant, **form.cleaned_data)
    except ingestion_services.IngestionError as exc:
        raise fields_invalid({"url": [str(exc)]}) from None
    if payload.crawl:
        ingestion_services.source_crawl_start(source=source)
    source = selectors.source_get_for_team(team=request.auth.team, source_id=source.pk)
    return Status(201, schemas.SourceWithProgress.model_validate(source))


@router.patch(
    "/sources/{int:source_id}",
    auth=TeamKey(WRITE),
    response=schemas.SourceWithProgress,
    summary="Update a website source",
    tags=["Sources"],
    openapi_extra=responds(200, "The source as updated; the next crawl uses its settings."),
)
def source_update(request, source_id: schemas.SourceId, payload: schemas.SourceUpdate):
    """Changes the fields sent and nothing else, checked like the dashboard's form. A crawl under way
    keeps the settings it started with."""
    source = selectors.source_get_for_team(team=request.auth.team, source_id=source_id)
    if source.kind != Source.Kind.WEBSITE:
        raise invalid("Only website sources have these settings.")
    data = WebsiteSourceForm.initial_for(source) | payload.model_dump(exclude_unset=True)
    form = WebsiteSourceForm(data={key: value for key, value in data.items() if value is not None})
    if not form.is_valid():
        raise _form_errors(form)
    try:
        ingestion_services.source_update_website(source=source, **form.cleaned_data)
    except ingestion_services.IngestionError as exc:
        raise fields_invalid({"url": [str(exc)]}) from None
    return selectors.source_get_for_team(team=request.auth.team, source_id=source_id)


@router.delete(
    "/sources/{int:source_id}",
    auth=TeamKey(WRITE),
    response={204: None},
    summary="Delete a source",
    tags=["Sources"],
    openapi_extra=responds(204, "Deleted, with its crawls, documents, passages and files."),
)
def source_delete(request, source_id: schemas.SourceId):
    source = selectors.source_get_for_team(team=request.auth.team, source_id=source_id)
    ingestion_services.source_delete(source=source)
    return Status(204, None)


@router.get(
    "/sources/{int:source_id}",
    auth=TeamKey(READ),
    response=schemas.SourceWithProgress,
    summary="Get a source",
    tags=["Sources"],
    openapi_extra=responds(200, "The source and its latest crawl's progress."),
)
def source_detail(request, source_id: schemas.SourceId):
    return selectors.source_get_for_team(team=request.auth.team, source_id=source_id)


@router.post(
    "/sources/{int:source_id}/crawl",
    auth=TeamKey(WRITE),
    response={202: schemas.SourceWithProgress},
    summary="Crawl a source",
    tags=["Sources"],
    openapi_extra=responds(202, "The crawl is queued (or was already under way).", "Invalid"),
)
def source_crawl(request, source_id: schemas.SourceId):
    """Queue a crawl, or return the one under way: calling it twice starts one crawl."""
    source = selectors.source_get_for_team(team=request.auth.team, source_id=source_id)
    if source.kind != Source.Kind.WEBSITE:
        raise invalid("Only website sources are crawled.")
    ingestion_services.source_crawl_start(source=source)
    return Status(202, selectors.source_get_for_team(team=request.auth.team, source_id=source_id))


def _source_control(request, source_id: int, control) -> Source:
    source = selectors.source_get_for_team(team=request.auth.team, source_id=source_id)
    try:
        control(source=source)
    except ingestion_services.IngestionError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return selectors.source_get_for_team(team=request.auth.team, source_id=source_id)


def _control_operation(action: str, control, done: str) -> None:
    def operation(request, source_id: schemas.SourceId):
        return _source_control(request, source_id, control)

    operation.__name__ = f"source_{action}"
    router.post(
        f"/sources/{{int:source_id}}/{action}",
        auth=TeamKey(WRITE),
        response=schemas.SourceWithProgress,
        summary=f"{action.title()} a crawl",
        tags=["Sources"],
        openapi_extra=responds(200, done, "Conflict"),
    )(operation)


_control_operation("pause", ingestion_services.run_pause, "Paused: the crawl stops after the page it is fetching.")
_control_operation("resume", ingestion_services.run_resume, "Queued again; pages already stored cost one request each.")
_control_operation("cancel", ingestion_services.run_cancel, "Cancelled; the pages stored so far stay.")


# Documents


def _page(queryset, page: schemas.Page) -> dict:
    """One page of ``queryset``, newest first, after the request's ``cursor``, with the next cursor."""
    items, next_cursor = selectors.newest_first_page(queryset, cursor=page.cursor, limit=page.limit)
    return {"data": items, "next_cursor": next_cursor}


@router.get(
    "/assistants/{int:assistant_id}/documents",
    auth=TeamKey(READ),
    response=schemas.DocumentPage,
    summary="List documents",
    tags=["Documents"],
    openapi_extra=responds(200, "The assistant's web pages, files and Q&A pairs, newest first."),
)
def document_list(request, assistant_id: schemas.AssistantId, filters: Query[schemas.DocumentFilter]):
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    documents = selectors.documents_for_assistant(assistant=assistant, status=filters.status, q=filters.q or "")
    return _page(documents, filters)


@router.post(
    "/assistants/{int:assistant_id}/documents",
    auth=TeamKey(WRITE, upload=True),
    response={202: schemas.UploadResult},
    summary="Upload documents",
    tags=["Documents"],
    openapi_extra=responds(202, "Stored; each file is parsed and indexed by a worker."),
)
def document_upload(
    request,
    assistant_id: schemas.AssistantId,
    file: Annotated[list[UploadedFile], File(description="One part per file.")],
):
    """PDF, DOCX, PPTX, XLSX, CSV, Markdown, HTML or text, as one or more multipart ``file`` parts
    (API_UPLOAD_MAX_FILES per request), stored and queued exactly like the dashboard's uploads. A file
    over UPLOAD_MAX_BYTES refuses the whole request with 413 and stores nothing; a file that cannot be
    parsed fails on its own, with its reason in the document's ``error``."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    if len(file) > settings.API_UPLOAD_MAX_FILES:
        raise fields_invalid({"file": [f"At most {settings.API_UPLOAD_MAX_FILES} files per request."]})
    too_large = [upload.name for upload in file if upload.size > settings.UPLOAD_MAX_BYTES]
    if too_large:
        raise ApiError(
            413,
            "payload_too_large",
            f"Each file may be at most {settings.UPLOAD_MAX_BYTES} bytes.",
            {"files": too_large, "max_file_bytes": settings.UPLOAD_MAX_BYTES},
        )
    source = ingestion_services.source_documents_get_or_create(assistant=assistant)
    run = ingestion_services.documents_upload(source=source, files=file)
    return Status(
        202,
        {
            "source": selectors.source_get_for_team(team=request.auth.team, source_id=source.pk),
            "documents": Document.objects.filter(last_run=run).order_by("id"),
        },
    )


@router.post(
    "/assistants/{int:assistant_id}/documents/url",
    auth=TeamKey(WRITE),
    response={202: schemas.Document},
    summary="Add a document by its address",
    tags=["Documents"],
    openapi_extra=responds(
        202,
        "Queued: a worker downloads it through the SSRF-safe client, then parses and indexes it; citations open "
        "the address. The same address again downloads it anew. A YouTube video's address (watch, youtu.be, "
        "shorts, embed, live) adds its transcript, cited at the moment quoted; a video without captions fails "
        "with the reason.",
    ),
)
@idempotent
def document_add_url(
    request, assistant_id: schemas.AssistantId, payload: schemas.DocumentByUrl, idempotency_key: IdempotencyKey = None
):
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    try:
        document = ingestion_services.document_add_url(assistant=assistant, url=payload.url)
    except ingestion_services.IngestionError as exc:
        raise fields_invalid({"url": [str(exc)]}) from None
    return Status(202, schemas.Document.model_validate(document))


@router.post(
    "/assistants/{int:assistant_id}/qa",
    auth=TeamKey(WRITE),
    response={201: schemas.Document},
    summary="Add a Q&A pair",
    tags=["Documents"],
    openapi_extra=responds(201, "The pair, as a document of the assistant's Q&A source; queued for indexing."),
)
@idempotent
def qa_create(
    request, assistant_id: schemas.AssistantId, payload: schemas.QAPair, idempotency_key: IdempotencyKey = None
):
    """A Q&A pair (or a snippet: a title and its text), indexed by a worker and cited like a page."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    try:
        document = ingestion_services.qa_add(assistant=assistant, question=payload.question, answer=payload.answer)
    except ingestion_services.IngestionError as exc:
        raise fields_invalid({"answer": [str(exc)]}) from None
    return Status(201, schemas.Document.model_validate(document))


@router.get(
    "/documents/{int:document_id}",
    auth=TeamKey(READ),
    response=schemas.Document,
    summary="Get a document",
    tags=["Documents"],
    openapi_extra=responds(200, "The document."),
)
def document_detail(request, document_id: schemas.DocumentId):
    return selectors.document_get_for_team(team=request.auth.team, document_id=document_id)


@router.delete(
    "/documents/{int:document_id}",
    auth=TeamKey(WRITE),
    response={204: None},
    summary="Delete a document",
    tags=["Documents"],
    openapi_extra=responds(204, "Deleted with its chunks: it is no longer cited."),
)
def document_delete(request, document_id: schemas.DocumentId):
    document = selectors.document_get_for_team(team=request.auth.team, document_id=document_id)
    ingestion_services.document_delete(document=document)
    return Status(204, None)


@router.post(
    "/documents/{int:document_id}/reindex",
    auth=TeamKey(WRITE),
    response={202: schemas.Document},
    summary="Reindex a document",
    tags=["Documents"],
    openapi_extra=responds(202, "Queued: an upload is parsed again, a page re-embedded from its text."),
)
def document_reindex(request, document_id: schemas.DocumentId):
    document = selectors.document_get_for_team(team=request.auth.team, document_id=document_id)
    ingestion_services.document_reindex(document=document)
    document.refresh_from_db()
    return Status(202, document)


# Feedback


@router.get(
    "/assistants/{int:assistant_id}/feedback",
    auth=TeamKey(READ),
    response=schemas.FeedbackPage,
    summary="List feedback",
    tags=["Feedback"],
    openapi_extra=responds(200, "Ratings of answers and contact requests, newest first."),
)
def feedback_list(request, assistant_id: schemas.AssistantId, filters: Query[schemas.FeedbackFilter]):
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    return _page(selectors.feedback_for_assistant(assistant=assistant, kind=filters.kind), filters)


# Handoffs


@router.get(
    "/handoffs",
    auth=TeamKey(READ),
    response=schemas.HandoffPage,
    summary="List handoffs",
    tags=["Handoffs"],
    openapi_extra=responds(200, "The team's handoffs to a person, newest first (docs/handoff.md)."),
)
def handoff_list(request, filters: Query[schemas.HandoffFilter]):
    """Conversations handed to the team (every assistant's), newest first, with why, the summary and
    who has it; the messages are the conversation's (``GET /conversations/{id}``, role ``agent``)."""
    return _page(selectors.handoffs_for_team(team=request.auth.team, status=filters.status), filters)


# Conversations


@router.get(
    "/assistants/{int:assistant_id}/conversations",
    auth=TeamKey(READ),
    response=schemas.ConversationPage,
    summary="List conversations",
    tags=["Conversations"],
    openapi_extra=responds(200, "Conversations, most recently active first."),
)
def conversation_list(request, assistant_id: schemas.AssistantId, filters: Query[schemas.ConversationFilter]):
    """The assistant's conversations, most recently active first; filtered by activity time, content
    gaps (``unanswered``) and ratings."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    rating = {"up": 1, "down": -1}.get(filters.rating)
    page, next_cursor = selectors.conversations_page(
        assistant=assistant,
        cursor=filters.cursor,
        limit=filters.limit,
        since=filters.since,
        until=filters.until,
        unanswered=filters.unanswered,
        rating=rating,
    )
    return {"data": page, "next_cursor": next_cursor}


EXPORT_EXAMPLES = {
    "jsonl": '{"conversation_id": 1280, "created_at": "2026-05-04T10:02:11.210000+00:00", "role": "user", '
    '"text": "When are you open on Saturdays?", "citations": [], "page_url": "https://www.acme.example/help"}\n',
    "csv": "conversation_id,created_at,role,text,citations,page_url\r\n"
    "1280,2026-05-04T10:02:11.210000+00:00,user,When are you open on Saturdays?,[],https://www.acme.example/help\r\n",
}


@router.get(
    "/assistants/{int:assistant_id}/conversations/export",
    auth=TeamKey(READ),
    summary="Export conversations",
    tags=["Conversations"],
    openapi_extra={
        "responses": {
            200: {
                "description": "Streamed, one JSON object per line (jsonl) or a header and one row per message "
                "(csv), conversation by conversation: conversation_id, created_at, role, text, citations "
                "(an array of Citation; in CSV as JSON), page_url.",
                "content": {
                    FORMATS[name].split(";")[0]: {"schema": {"type": "string"}, "example": example}
                    for name, example in EXPORT_EXAMPLES.items()
                },
            }
        }
    },
)
def conversation_export(request, assistant_id: schemas.AssistantId, filters: Query[schemas.ExportFilter]):
    """Every message of the assistant's conversations, streamed as JSONL or CSV (``format``)."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    rows = selectors.conversation_export_rows(assistant=assistant, since=filters.since, until=filters.until)
    response = StreamingHttpResponse(export_lines(rows, filters.format), content_type=FORMATS[filters.format])
    response["Content-Disposition"] = f'attachment; filename="{assistant.slug}-conversations.{filters.format}"'
    return response


@router.get(
    "/conversations/{int:conversation_id}",
    auth=TeamKey(READ),
    response=schemas.ConversationWithMessages,
    summary="Get a conversation",
    tags=["Conversations"],
    openapi_extra=responds(200, "The conversation and its messages."),
)
def conversation_detail(request, conversation_id: schemas.ConversationId):
    return selectors.conversation_get_for_team(team=request.auth.team, conversation_id=conversation_id)


# Chat


def api_visitor_token(key: ApiKey) -> str:
    """The visitor token of a key's conversations: they list like any other, and only it resumes them."""
    return f"api:{key.prefix}"


def _chat_conversation(key: ApiKey, assistant_id: int, conversation_id: int | None) -> tuple[Assistant, Conversation]:
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


@router.post(
    "/assistants/{int:assistant_id}/chat",
    auth=TeamKey(CHAT),
    response=schemas.ChatAnswer,
    summary="Ask a question",
    tags=["Chat"],
    openapi_extra=responds(
        200,
        "The answer: JSON, or with stream=true Server-Sent Events exactly like the chat on the site "
        "(meta {conversation_id}, token {text}…, citations {citations, html}, error {kind, message}, "
        "done {message_id}).",
        "AnswerFailed",
        streamed=schemas.ChatEvent,
    ),
)
async def chat(request, assistant_id: schemas.AssistantId, payload: schemas.Question):
    """Conversations started with a key are listed like the others; only that key can continue them."""
    question = payload.question.strip()
    assistant, conversation = await sync_to_async(_chat_conversation)(
        request.auth, assistant_id, payload.conversation_id
    )
    places = await sync_to_async(stream_places, thread_sensitive=False)(assistant, api_visitor_token(request.auth))
    if places is None:
        raise ApiError(
            429,
            "busy",
            "Too many answers of this key or assistant under way; retry shortly.",
            {"retry_after": STREAM_RETRY_AFTER},
            headers={"Retry-After": str(STREAM_RETRY_AFTER)},
        )
    release = sync_to_async(release_stream_places, thread_sensitive=False)
    events = answer_events(assistant=assistant, conversation=conversation, question=question)
    if payload.stream:

        async def body():
            try:
                async for event in events:
                    yield event.sse()
            finally:
                await release(places)

        response = StreamingHttpResponse(ended_cleanly(body()), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
    parts, citations, error, message_id = [], [], None, None
    try:
        async for event in events:
            if event.name == "token":
                parts.append(event.data["text"])
            elif event.name == "citations":
                citations = event.data["citations"]
            elif event.name == "error":
                error = event.data
            elif event.name == "done":
                message_id = event.data["message_id"]
    finally:
        await release(places)
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
    return {
        "conversation_id": conversation.pk,
        "answer": "".join(parts),
        "citations": citations,
        "message_id": message_id,
    }


# Leads


@router.get(
    "/leads",
    auth=TeamKey(READ),
    response=schemas.LeadPage,
    summary="List leads",
    tags=["Leads"],
    openapi_extra=responds(200, "The team's leads, newest first, with their scores and the parts of each."),
)
def lead_list(request, filters: Query[schemas.LeadFilter]):
    """Every lead of the key's team (contact details, consent, score and its parts), newest first;
    filtered by status, assistant, minimum score and creation time."""
    leads = selectors.leads_for_team(
        team=request.auth.team,
        status=filters.status,
        assistant_id=filters.assistant_id,
        min_score=filters.min_score,
        since=filters.since,
        until=filters.until,
    )
    return _page(leads, filters)


@router.get(
    "/leads/{int:lead_id}",
    auth=TeamKey(READ),
    response=schemas.Lead,
    summary="Get a lead",
    tags=["Leads"],
    openapi_extra=responds(200, "The lead."),
)
def lead_detail(request, lead_id: schemas.LeadId):
    return selectors.lead_get_for_team(team=request.auth.team, lead_id=lead_id)


@router.patch(
    "/leads/{int:lead_id}",
    auth=TeamKey(WRITE),
    response=schemas.Lead,
    summary="Update a lead",
    tags=["Leads"],
    openapi_extra=responds(200, "The lead, with its new status or notes."),
)
def lead_update(request, lead_id: schemas.LeadId, payload: schemas.LeadUpdate):
    """Move a lead along (new, contacted, qualified, closed) or replace its notes."""
    lead = selectors.lead_get_for_team(team=request.auth.team, lead_id=lead_id)
    sent = payload.model_dump(exclude_unset=True)
    return lead_services.lead_update(lead=lead, status=sent.get("status"), notes=sent.get("notes"))


# Analytics (docs/analytics.md)


def _analytics_period(filters: schemas.AnalyticsPeriodFilter):
    """The period asked for, checked as the dashboard checks it (the previous period is as long)."""
    from assistants.analytics.forms import AnalyticsFilterForm

    data = {name: getattr(filters, name).isoformat() for name in ("start", "end") if getattr(filters, name)}
    form = AnalyticsFilterForm(data=data)
    if not form.is_valid():
        raise _form_errors(form)
    return form.cleaned_data["period"]


def _period_out(period) -> dict:
    return {"start": period.start, "end": period.end, "days": period.days}


@router.get(
    "/assistants/{int:assistant_id}/analytics/overview",
    auth=TeamKey(READ),
    response=schemas.AnalyticsOverview,
    summary="Get the analytics overview",
    tags=["Analytics"],
    openapi_extra=responds(200, "Every metric of the period beside the previous period's, per day, pages, models."),
)
def analytics_overview(request, assistant_id: schemas.AssistantId, filters: Query[schemas.AnalyticsPeriodFilter]):
    """The dashboard's Overview: every metric (conversations, answered and unanswered rates, resolved,
    handoffs, ratings, leads, time to first token, tokens and cost…) with its formula, for the period
    and the previous period of the same length; the figures per day, the top pages asked from, and
    answers, tokens and cost by model. Computed from the daily rollups (refreshed every 10 minutes)."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    return {"assistant_id": assistant.pk, **_overview_out([assistant.pk], _analytics_period(filters))}


def _overview_out(assistant_ids: list[int], period) -> dict:
    from assistants.analytics import selectors as analytics

    overview = analytics.overview(assistant_ids=assistant_ids, period=period)
    return {
        "period": _period_out(period),
        "previous_period": _period_out(period.previous()),
        "metrics": [
            {
                "key": card["metric"].key,
                "label": card["metric"].label,
                "formula": card["metric"].formula,
                "unit": card["metric"].unit,
                "value": card["value"],
                "previous": card["previous"],
                "change": card["delta"],
            }
            for card in overview["cards"]
        ],
        "per_day": overview["series"],
        "top_pages": overview["pages"],
        "models": overview["models"],
    }


@router.get(
    "/analytics/overview",
    auth=TeamKey(READ),
    response=schemas.TeamAnalyticsOverview,
    summary="Get the whole team's analytics overview",
    tags=["Analytics"],
    openapi_extra=responds(200, "The same figures as an assistant's overview, for all the team's assistants."),
)
def team_analytics_overview(request, filters: Query[schemas.AnalyticsPeriodFilter]):
    """The dashboard's whole-team Overview: every metric of ``/assistants/{id}/analytics/overview``, for
    all the key's team's assistants together (the team's daily rollups), beside the previous period."""
    ids = selectors.assistant_ids_for_team(team=request.auth.team)
    return {"team_id": request.auth.team_id, "assistants": len(ids), **_overview_out(ids, _analytics_period(filters))}


@router.get(
    "/assistants/{int:assistant_id}/analytics/topics",
    auth=TeamKey(READ),
    response=schemas.TopicPage,
    summary="List top questions",
    tags=["Analytics"],
    openapi_extra=responds(200, "The topics of the latest topic build, most questions first."),
)
def analytics_topics(request, assistant_id: schemas.AssistantId, filters: Query[schemas.Page]):
    """What visitors asked: the questions of the latest topic build (nightly, the last 30 days) grouped
    into topics, each with its central question, key terms, counts and trend; questions asked since the
    build have joined their nearest topic (``joined``)."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    build, topics = selectors.topics_for_assistant(assistant=assistant)
    rows, next_cursor = selectors.ranked_page(topics, field="questions", cursor=filters.cursor, limit=filters.limit)
    return {"build": build, "data": rows, "next_cursor": next_cursor}


@router.get(
    "/assistants/{int:assistant_id}/analytics/gaps",
    auth=TeamKey(READ),
    response=schemas.ContentGapPage,
    summary="List content gaps",
    tags=["Analytics"],
    openapi_extra=responds(200, "Topics the assistant failed on, most visitors first, with the fix and re-check."),
)
def analytics_gaps(request, assistant_id: schemas.AssistantId, filters: Query[schemas.GapFilter]):
    """Content gaps: topics whose questions went unanswered or were rated down, with their kind (no page
    covers it, or a page covers it but the answer failed, naming the page), the fix proposed, and
    what asking the questions again after new content gave."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    gaps = selectors.gaps_for_assistant(assistant=assistant, status=filters.status)
    rows, next_cursor = selectors.ranked_page(gaps, field="visitors", cursor=filters.cursor, limit=filters.limit)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    "/analytics/topics",
    auth=TeamKey(READ),
    response=schemas.TeamTopicPage,
    summary="List the whole team's top questions",
    tags=["Analytics"],
    openapi_extra=responds(200, "The topics of every assistant's latest topic build, most questions first."),
)
def team_analytics_topics(request, filters: Query[schemas.Page]):
    """The topics of ``/assistants/{id}/analytics/topics`` for all the key's team's assistants together
    (each assistant's latest build; each topic names its assistant), most questions first."""
    builds, topics = selectors.team_topics(team=request.auth.team)
    rows, next_cursor = selectors.ranked_page(topics, field="questions", cursor=filters.cursor, limit=filters.limit)
    return {"builds": builds, "data": rows, "next_cursor": next_cursor}


@router.get(
    "/analytics/gaps",
    auth=TeamKey(READ),
    response=schemas.TeamContentGapPage,
    summary="List the whole team's content gaps",
    tags=["Analytics"],
    openapi_extra=responds(200, "The content gaps of all the team's assistants, most visitors first."),
)
def team_analytics_gaps(request, filters: Query[schemas.GapFilter]):
    """The content gaps of ``/assistants/{id}/analytics/gaps`` for all the key's team's assistants
    together (each names its assistant), most visitors first; ``status`` filters them."""
    gaps = selectors.team_gaps(team=request.auth.team, status=filters.status)
    rows, next_cursor = selectors.ranked_page(gaps, field="visitors", cursor=filters.cursor, limit=filters.limit)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    "/analytics/lead-quality",
    auth=TeamKey(READ),
    response=schemas.LeadQualityPage,
    summary="Get the whole team's lead quality",
    tags=["Analytics"],
    openapi_extra=responds(200, "The period's leads by score bucket, topic and page (pages most leads first)."),
)
def team_analytics_lead_quality(request, filters: Query[schemas.LeadQualityFilter]):
    """The Overview's lead quality for all the key's team's assistants: the leads created in the period
    by score bucket beside the previous period, the 20 topics with most leads (latest builds), and per
    page the leads and their average score, most leads first (paginated)."""
    from assistants.analytics import selectors as analytics

    period = _analytics_period(filters)
    ids = selectors.assistant_ids_for_team(team=request.auth.team)
    quality = analytics.lead_quality(assistant_ids=ids, period=period, page_rows=None)
    rows, next_cursor = selectors.lead_pages_page(quality["pages"], cursor=filters.cursor, limit=filters.limit)
    return {
        "period": _period_out(period),
        "previous_period": _period_out(period.previous()),
        "total": quality["total"],
        "buckets": [{key: b[key] for key in ("low", "high", "count", "previous")} for b in quality["buckets"]],
        "topics": [
            {key: t[key] for key in ("topic_id", "assistant_id", "label", "leads")} | {"average_score": t["average"]}
            for t in quality["topics"]
        ],
        "data": [{"url": p["url"], "leads": p["leads"], "average_score": p["average"]} for p in rows],
        "next_cursor": next_cursor,
    }


@router.get(
    "/assistants/{int:assistant_id}/analytics/sources",
    auth=TeamKey(READ),
    response=schemas.SourceUsagePage,
    summary="List source usage",
    tags=["Analytics"],
    openapi_extra=responds(200, "The pages and documents answers cited in the period, most cited first."),
)
def analytics_sources(request, assistant_id: schemas.AssistantId, filters: Query[schemas.SourceUsageFilter]):
    """Per cited page or document: answers that cited it in the period, those rated up and down, when
    it was last cited; and how many of the assistant's indexed pages were never cited."""
    assistant = selectors.assistant_get_for_team(team=request.auth.team, assistant_id=assistant_id)
    return _sources_out([assistant.pk], _analytics_period(filters), filters)


@router.get(
    "/analytics/sources",
    auth=TeamKey(READ),
    response=schemas.SourceUsagePage,
    summary="List the whole team's source usage",
    tags=["Analytics"],
    openapi_extra=responds(
        200, "The pages and documents all the team's answers cited in the period, most cited first."
    ),
)
def team_analytics_sources(request, filters: Query[schemas.SourceUsageFilter]):
    """Source usage of ``/assistants/{id}/analytics/sources`` for all the key's team's assistants together."""
    ids = selectors.assistant_ids_for_team(team=request.auth.team)
    return _sources_out(ids, _analytics_period(filters), filters)


def _sources_out(assistant_ids: list[int], period, filters) -> dict:
    from assistants.analytics import selectors as analytics

    usage = analytics.source_usage(assistant_ids=assistant_ids, period=period)
    rows, next_cursor = selectors.cited_page(usage["cited"], cursor=filters.cursor, limit=filters.limit)
    return {
        "period": _period_out(period),
        "never_cited": usage["never_count"],
        "data": [
            {
                "url": row["url"],
                "title": row["title"] or "",
                "cited": row["cited"],
                "rated_up": row["up"],
                "rated_down": row["down"],
                "last_cited": row["last"],
            }
            for row in rows
        ],
        "next_cursor": next_cursor,
    }
