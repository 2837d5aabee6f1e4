"""The API's typed requests and responses. django-ninja validates every request against them and
generates the OpenAPI document (``/api/v1/openapi.json``) from them, so the two cannot disagree.

Nothing here is typed a second time: choices come from the models' fields and choices (the
dashboard's form where a model field has none), limits and defaults from settings and from the
form the dashboard validates with, and the examples are checked against the schemas by the tests.
Requests refuse unknown fields; responses list every field, always.
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db import models
from ninja import Field, Path, Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, StrictBool, StrictInt, model_serializer

from assistants import forms
from assistants.analytics.metrics import METRICS
from assistants.answering.pipeline import MAX_QUESTION_CHARS
from assistants.api.export import FORMATS, parse_bound
from assistants.models import Assistant as AssistantModel
from assistants.models import ContentGap as ContentGapModel
from assistants.models import Conversation as ConversationModel
from assistants.models import Feedback as FeedbackModel
from assistants.models import Handoff as HandoffModel
from assistants.models import Lead as LeadModel
from assistants.models import Message as MessageModel
from assistants.selectors import conversation_messages
from ingestion.models import CrawlRun as CrawlRunModel
from ingestion.models import Document as DocumentModel
from ingestion.models import Source as SourceModel
from ingestion.selectors import source_progress
from ingestion.services.sources import QA_MAX_CHARS


def one_of(values: Iterable) -> Any:
    """A ``Literal`` of these values: validated exactly, documented as an ``enum``."""
    return Literal[tuple(values)]


def choices_text(choices: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f'"{value}": {label}' for value, label in choices) + "."


def _field(model: type[models.Model], name: str) -> models.Field:
    return model._meta.get_field(name)


def model_choice(model: type[models.Model], name: str, description: str = "") -> Any:
    """The choices of a model's field, as a typed value whose description names each one."""
    choices = _field(model, name).choices
    return Annotated[
        one_of(value for value, _ in choices), Field(description=f"{description} {choices_text(choices)}".strip())
    ]


def _max(model: type[models.Model], name: str) -> int:
    return _field(model, name).max_length


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("Must hold some text, not only spaces.")
    return text


def words(max_length: int, description: str) -> Any:
    """Text of at most ``max_length`` characters that is more than spaces."""
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, description=f"{description} Not only spaces."),
        AfterValidator(_not_blank),
    ]


_BRANDING = forms.AssistantBrandingForm.base_fields
_WEBSITE = forms.WebsiteSourceForm.base_fields

# Identifiers in paths

AssistantId = Annotated[int, Path(description="The assistant's id.", examples=[42])]
SourceId = Annotated[int, Path(description="The source's id.", examples=[7])]
DocumentId = Annotated[int, Path(description="The document's id.", examples=[314])]
ConversationId = Annotated[int, Path(description="The conversation's id.", examples=[1280])]

# Assistants

HexColor = Annotated[str, Field(pattern=forms.HEX_COLOR, description="#rrggbb.")]
LauncherPosition = model_choice(AssistantModel, "launcher_position", "Where the widget's button sits.")
LauncherIcon = model_choice(AssistantModel, "launcher_icon", "The widget button's icon.")
Theme = model_choice(AssistantModel, "theme", "Light or dark; auto follows the visitor's system.")
Language = Annotated[
    one_of(value for value, _ in forms.LANGUAGE_CHOICES),
    Field(description=f"The language of the chat's labels and answers. {choices_text(forms.LANGUAGE_CHOICES)}"),
]
LlmProvider = Annotated[
    one_of(value for value, _ in forms.LLM_PROVIDERS),
    Field(description=f"The language model's API. {choices_text(forms.LLM_PROVIDERS)}"),
]
AssistantName = Annotated[str, Field(min_length=1, max_length=_max(AssistantModel, "name"))]


class AssistantFields(Schema):
    """An assistant's settings as the dashboard's form edits them; each is optional here."""

    model_config = ConfigDict(extra="forbid")

    name: AssistantName = None
    greeting: Annotated[str, Field(max_length=_max(AssistantModel, "greeting"), description="The first message.")] = (
        None
    )
    system_prompt: Annotated[str, Field(description="Instructions the language model gets with every question.")] = None
    primary_color: HexColor = None
    background_color: HexColor = None
    allowed_domains: Annotated[
        list[str], Field(description="Sites that may embed the assistant, as host names (www.example.com).")
    ] = None
    avatar_url: Annotated[
        str, Field(max_length=_BRANDING["avatar_url"].max_length, description="An http(s) image shown next to answers.")
    ] = None
    logo_url: Annotated[
        str, Field(max_length=_BRANDING["logo_url"].max_length, description="An http(s) image in the chat's header.")
    ] = None
    launcher_position: LauncherPosition = None
    launcher_icon: LauncherIcon = None
    theme: Theme = None
    suggested_questions: Annotated[
        list[Annotated[str, Field(max_length=forms.MAX_SUGGESTED_QUESTION_CHARS)]],
        Field(max_length=forms.MAX_SUGGESTED_QUESTIONS, description="Shown as buttons before the first question."),
    ] = None
    show_powered_by: Annotated[StrictBool, Field(description="Show “Powered by Chatsite”.")] = None
    language: Language = None
    llm_provider: LlmProvider = None
    llm_model: Annotated[
        str, Field(max_length=_BRANDING["llm_model"].max_length, description='e.g. gpt-4o-mini; "": the server\'s.')
    ] = None
    llm_base_url: Annotated[
        str, Field(max_length=_BRANDING["llm_base_url"].max_length, description='"": the provider\'s official API.')
    ] = None
    reranker_model: Annotated[
        str,
        Field(
            max_length=_BRANDING["reranker_model"].max_length,
            description='A cross-encoder or Qwen3-Reranker this server can run; "": none.',
        ),
    ] = None
    access_code: Annotated[
        str | None,
        Field(
            min_length=_BRANDING["access_code"].min_length,
            max_length=_BRANDING["access_code"].max_length,
            description="Makes the assistant internal (visitors enter it first); null makes it public again; "
            "absent keeps it. Never returned.",
            json_schema_extra={"writeOnly": True},
        ),
    ] = None


ASSISTANT_EXAMPLE = {
    "name": "Acme Help",
    "greeting": "Hi! Ask me anything about Acme.",
    "primary_color": "#0f766e",
    "allowed_domains": ["www.acme.example"],
    "suggested_questions": ["How do I reset my password?", "Where is my order?"],
    "language": "en",
}


class AssistantCreate(AssistantFields):
    """A new assistant: a name, and any other setting (the rest take their defaults)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ASSISTANT_EXAMPLE]})

    name: AssistantName


class AssistantUpdate(AssistantFields):
    """The settings to change; those not sent stay as they are."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"greeting": "Hello! How can I help?", "theme": "dark", "access_code": None}]}
    )


class Assistant(Schema):
    id: int
    slug: str
    public_key: str = Field(description="Identifies the assistant in the widget; it only allows chatting.")
    name: str
    greeting: str
    system_prompt: str
    primary_color: str
    background_color: str
    allowed_domains: list[str]
    avatar_url: str
    logo_url: str
    launcher_position: LauncherPosition
    launcher_icon: LauncherIcon
    theme: Theme
    suggested_questions: list[str]
    show_powered_by: bool
    language: Language
    llm_provider: LlmProvider
    llm_model: str
    llm_base_url: str
    reranker_model: str
    internal: bool = Field(description="Whether visitors need an access code.")
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "slug": "acme-help-x1y2",
                    "public_key": "pk_Vq3nE0o1dX9a7bJcL2wqk3",
                    **ASSISTANT_EXAMPLE,
                    "system_prompt": "You are a helpful assistant for this website.",
                    "background_color": "#ffffff",
                    "avatar_url": "",
                    "logo_url": "https://www.acme.example/logo.png",
                    "launcher_position": "right",
                    "launcher_icon": "chat",
                    "theme": "auto",
                    "show_powered_by": True,
                    "llm_provider": "",
                    "llm_model": "",
                    "llm_base_url": "",
                    "reranker_model": "",
                    "internal": False,
                    "created_at": "2026-05-04T09:30:00.120000+00:00",
                }
            ]
        }
    )

    @staticmethod
    def resolve_internal(assistant: AssistantModel) -> bool:
        return bool(assistant.access_code_hash)


class AssistantList(Schema):
    data: list[Assistant] = Field(description="The team's assistants, by name.")


# Sources

SourceStatus = model_choice(SourceModel, "status")
Patterns = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=forms.MAX_PATTERN_CHARS)]],
    Field(
        max_length=forms.MAX_PATTERNS,
        description="Globs on a URL's path and query, each starting with / or * (e.g. /docs/*, *?print=*).",
    ),
]
SitemapUrl = Annotated[
    str, Field(max_length=2000, description="A sitemap on the same site, read instead of robots.txt's; empty: none.")
]


class SourceCreate(Schema):
    """A website to crawl (its pages become the assistant's content), as the dashboard's form takes it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://docs.acme.example/", "max_pages": 200, "schedule": "weekly"}]},
    )

    kind: Literal[SourceModel.Kind.WEBSITE.value] = Field(
        SourceModel.Kind.WEBSITE.value, description="Only websites are added here; documents have their own operations."
    )
    url: Annotated[
        str, Field(min_length=1, max_length=_max(SourceModel, "url"), description="A public http(s) address.")
    ]
    max_pages: Annotated[
        StrictInt,
        Field(
            ge=_WEBSITE["max_pages"].min_value,
            le=_WEBSITE["max_pages"].max_value,
            description="The most pages one crawl fetches (the server's CRAWL_MAX_PAGES by default).",
        ),
    ] = settings.CRAWL_MAX_PAGES
    max_depth: Annotated[
        StrictInt,
        Field(
            ge=_WEBSITE["max_depth"].min_value,
            le=_WEBSITE["max_depth"].max_value,
            description="How many links away from the address the crawl goes (CRAWL_MAX_DEPTH by default).",
        ),
    ] = settings.CRAWL_MAX_DEPTH
    schedule: model_choice(SourceModel, "schedule", "When it is crawled again.") = SourceModel.Schedule.MANUAL.value
    render_javascript: Annotated[
        StrictBool, Field(description="Run each page's scripts in headless Chromium before reading it (slower).")
    ] = False
    include: Patterns = []
    exclude: Patterns = []
    sitemap_url: SitemapUrl = ""
    whole_site: Annotated[
        StrictBool,
        Field(description="Read the whole site; by default the crawl stays under the address's folder (/help/…)."),
    ] = False
    crawl: Annotated[StrictBool, Field(description="Queue the first crawl now; false saves the source alone.")] = True


class SourceUpdate(Schema):
    """A website source's settings; the fields sent change, the others stay."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"include": ["/docs/*"], "exclude": ["/docs/old/*"]}]}
    )

    url: Annotated[str, Field(min_length=1, max_length=_max(SourceModel, "url"))] | None = None
    max_pages: (
        Annotated[StrictInt, Field(ge=_WEBSITE["max_pages"].min_value, le=_WEBSITE["max_pages"].max_value)] | None
    ) = None
    max_depth: (
        Annotated[StrictInt, Field(ge=_WEBSITE["max_depth"].min_value, le=_WEBSITE["max_depth"].max_value)] | None
    ) = None
    schedule: model_choice(SourceModel, "schedule", "When it is crawled again.") | None = None
    render_javascript: StrictBool | None = None
    include: Patterns | None = None
    exclude: Patterns | None = None
    sitemap_url: SitemapUrl | None = None
    whole_site: StrictBool | None = None


class ReportEntry(Schema):
    url: str
    reason: str


class CrawlProgress(Schema):
    """The latest crawl."""

    id: int
    status: model_choice(CrawlRunModel, "status")
    pages_found: int
    pages_fetched: int
    pages_failed: int
    pages_skipped: int
    pages_unchanged: int
    started_at: datetime | None
    finished_at: datetime | None
    report: dict[str, list[ReportEntry]] = Field(
        description="The crawl report: lists (failed, skipped, …) of the pages concerned and why."
    )


class DocumentCounts(Schema):
    total: int
    ready: int
    pending: int
    failed: int
    chunks: int


class Progress(Schema):
    status: SourceStatus
    status_label: str
    error: str
    run: CrawlProgress | None
    documents: DocumentCounts


SOURCE_EXAMPLE = {
    "id": 7,
    "assistant_id": 42,
    "kind": "website",
    "name": "https://docs.acme.example/",
    "url": "https://docs.acme.example/",
    "schedule": "weekly",
    "settings": {"max_pages": 200, "max_depth": 5},
    "status": "ready",
    "error": "",
    "created_at": "2026-05-04T09:31:10.500000+00:00",
}


class Source(Schema):
    id: int
    assistant_id: int
    kind: model_choice(SourceModel, "kind")
    name: str
    url: str
    schedule: model_choice(SourceModel, "schedule")
    settings: dict[str, Any] = Field(
        description="A website's max_pages, max_depth, render_javascript, include, exclude, sitemap_url and whole_site."
    )
    status: SourceStatus
    error: str
    created_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [SOURCE_EXAMPLE]})


class SourceWithProgress(Source):
    progress: Progress

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                SOURCE_EXAMPLE
                | {
                    "status": "running",
                    "progress": {
                        "status": "running",
                        "status_label": "Running",
                        "error": "",
                        "run": {
                            "id": 77,
                            "status": "running",
                            "pages_found": 140,
                            "pages_fetched": 61,
                            "pages_failed": 1,
                            "pages_skipped": 3,
                            "pages_unchanged": 0,
                            "started_at": "2026-05-04T09:31:11.020000+00:00",
                            "finished_at": None,
                            "report": {
                                "failed": [{"url": "https://docs.acme.example/old/", "reason": "HTTP 500"}],
                                "skipped": [],
                            },
                        },
                        "documents": {"total": 61, "ready": 48, "pending": 12, "failed": 1, "chunks": 402},
                    },
                }
            ]
        }
    )

    @staticmethod
    def resolve_progress(source: SourceModel) -> dict:
        return source_progress(source=source)


class SourceList(Schema):
    data: list[Source] = Field(description="The assistant's sources, newest first.")


# Documents

DocumentStatus = model_choice(DocumentModel, "status")


class Document(Schema):
    id: int
    source_id: int
    url: str = Field(description="The page, or where the uploaded file is served.")
    title: str
    file_name: str = Field(description="An upload's file name; empty for a web page.")
    status: DocumentStatus
    error: str = Field(description="Why it failed, in words.")
    warnings: list[str]
    chunk_count: int
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 314,
                    "source_id": 8,
                    "url": "https://chatsite.example/d/Zx81…/price-list.pdf",
                    "title": "Price list 2026",
                    "file_name": "price-list.pdf",
                    "status": "ready",
                    "error": "",
                    "warnings": [],
                    "chunk_count": 12,
                    "created_at": "2026-05-04T09:40:00+00:00",
                    "updated_at": "2026-05-04T09:40:09.250000+00:00",
                }
            ]
        }
    )


NEXT_CURSOR = "Pass as ?cursor= for the next page; null on the last."


class DocumentPage(Schema):
    data: list[Document]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class UploadResult(Schema):
    source: SourceWithProgress = Field(description="The assistant's source of uploaded documents.")
    documents: list[Document] = Field(description="The files just stored, each queued to be parsed and indexed.")


class DocumentByUrl(Schema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://www.acme.example/files/price-list.pdf"}]}
    )

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=_max(DocumentModel, "url"),
            description="An http(s) address of a document, or of a YouTube video (its transcript is added).",
        ),
    ]


class QAPair(Schema):
    """A question and its answer, or a snippet: a title and its text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "Do you ship to Canada?", "answer": "Yes, within 5 working days, for 9 €."}]
        },
    )

    question: words(_max(DocumentModel, "title"), "The question, or a snippet's title.")
    answer: words(QA_MAX_CHARS, "The answer, or the snippet's text.")


# Paging and filters (query strings)


def _true_or_false(raw: Any) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    raise ValueError("Expected true or false.")


def _date_time(raw: Any) -> Any:
    return parse_bound(raw) if isinstance(raw, str) else raw


Flag = Annotated[bool, BeforeValidator(_true_or_false)]
DateTime = Annotated[datetime, BeforeValidator(_date_time)]  # a naive one is in the server's time zone


class Page(Schema):
    cursor: Annotated[str, Field(description="next_cursor of the previous page.")] = None
    limit: Annotated[
        int,
        Field(ge=1, le=settings.API_MAX_PAGE_SIZE, description="How many items (API_PAGE_SIZE by default)."),
    ] = settings.API_PAGE_SIZE


class DocumentFilter(Page):
    status: Annotated[DocumentStatus, Field(description="Only documents in this state.")] = None
    q: Annotated[
        str | None,
        Field(
            max_length=200,
            pattern=r"^[^\x00]*$",  # PostgreSQL text holds no NUL: a clear 400, not a 500 from the query
            description="Only documents whose title, address or file name holds every word.",
        ),
    ] = None


class FeedbackFilter(Page):
    kind: model_choice(FeedbackModel, "kind", "Only this kind.") = None


class HandoffFilter(Page):
    status: Annotated[
        Literal["pending", "open", "resolved"],
        Field(description="pending: nobody took it yet; open: a team member has it; resolved."),
    ] = None


class ConversationFilter(Page):
    since: Annotated[DateTime, Field(description="Active at or after this time (ISO 8601).")] = None
    until: Annotated[DateTime, Field(description="Last active before this time (ISO 8601).")] = None
    unanswered: Annotated[
        Flag, Field(description="true: only conversations with a question the content could not answer.")
    ] = None
    rating: Annotated[Literal["up", "down"], Field(description="Only conversations with an answer rated so.")] = None


class ExportFilter(Schema):
    format: Annotated[one_of(FORMATS), Field(description="JSON Lines, or CSV with a header row.")] = "jsonl"
    since: Annotated[DateTime, Field(description="Only messages created at or after this time (ISO 8601).")] = None
    until: Annotated[DateTime, Field(description="Only messages created before this time (ISO 8601).")] = None


# Feedback and conversations


class Feedback(Schema):
    id: int
    conversation_id: int
    message_id: int | None = Field(description="The rated answer; null for a contact request.")
    kind: model_choice(FeedbackModel, "kind")
    rating: Literal[1, -1] | None = Field(description="1 helpful, -1 not; null for a contact request.")
    comment: str
    details: dict[str, Any] = Field(description="A contact request's name, email, message and page_url.")
    created_at: datetime


class FeedbackPage(Schema):
    data: list[Feedback]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class Conversation(Schema):
    id: int
    assistant_id: int
    page_url: str = Field(description="The page the visitor asked from, when known.")
    created_at: datetime
    updated_at: datetime


class ConversationPage(Schema):
    data: list[Conversation]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class Citation(Schema):
    n: int = Field(description="The [n] the answer uses.")
    title: str
    url: str
    section: str = None
    chunk_id: int = None

    @model_serializer(mode="wrap")
    def _only_what_is_known(self, serialize):
        return {name: value for name, value in serialize(self).items() if value is not None}


class Message(Schema):
    role: model_choice(MessageModel, "role")
    text: str
    citations: list[Citation]
    created_at: datetime


class ConversationWithMessages(Conversation):
    messages: list[Message]

    @staticmethod
    def resolve_messages(conversation: ConversationModel) -> list[dict]:
        return conversation_messages(conversation=conversation)


# Handoffs


class Handoff(Schema):
    id: int
    conversation_id: int
    assistant_id: int
    status: Literal["pending", "open", "resolved"] = Field(description="pending, open (taken) or resolved.")
    reason: model_choice(HandoffModel, "reason")
    trigger: str = Field(description="What handed it over: the visitor's words, the rule, the rating's comment.")
    summary: str = Field(description="For the person taking it: by the assistant's model, or extractive.")
    page_url: str
    requested_at: datetime
    assigned_to: str | None = Field(description="The team member who has it (their first name or username).")
    resolved_at: datetime | None

    @staticmethod
    def resolve_assistant_id(handoff: HandoffModel) -> int:
        return handoff.conversation.assistant_id

    @staticmethod
    def resolve_status(handoff: HandoffModel) -> str:
        return "resolved" if handoff.resolved_at else "open" if handoff.assigned_to_id else "pending"

    @staticmethod
    def resolve_assigned_to(handoff: HandoffModel) -> str | None:
        user = handoff.assigned_to
        return (user.first_name or user.username) if user else None


class HandoffPage(Schema):
    data: list[Handoff]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


# Chat


class Question(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "When is the help desk open on Saturdays?"}]},
    )

    question: words(MAX_QUESTION_CHARS, "The visitor's question, as they would type it.")
    conversation_id: Annotated[
        StrictInt | None, Field(ge=1, description="Continue a conversation this key started.")
    ] = None
    stream: Annotated[StrictBool, Field(description="Answer as Server-Sent Events, as the chat on the site does.")] = (
        False
    )


class ChatAnswer(Schema):
    conversation_id: int
    answer: str = Field(description="Markdown with [n] citations.")
    citations: list[Citation]
    message_id: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation_id": 1280,
                    "answer": "On Saturdays the help desk opens at 10 am [1].",
                    "citations": [
                        {
                            "n": 1,
                            "title": "Opening hours",
                            "section": "Weekends",
                            "url": "https://docs.acme.example/opening-hours/#weekends",
                            "chunk_id": 90211,
                        }
                    ],
                    "message_id": 5531,
                }
            ]
        }
    )


class ChatEvent(Schema):
    """One Server-Sent Event of a streamed answer (the schema of each event, not of the stream)."""

    event: Literal["meta", "token", "citations", "error", "done"]
    data: str = Field(
        description="A JSON object: meta {conversation_id}, token {text}, citations {citations, html}, "
        "error {kind, message, offer_human}, done {message_id, unanswered}.",
        json_schema_extra={"contentMediaType": "application/json"},
    )


# Errors


class ErrorBody(Schema):
    code: str = Field(description="Stable and machine-readable, e.g. not_found, validation_failed.")
    message: str = Field(description="One sentence for a person.")
    details: dict[str, Any] = Field(
        description='Per field ({"name": ["why", …]}) or parameter ({"parameter": "limit"}), when there is more to say.'
    )


class Error(Schema):
    """Every refusal has this shape."""

    error: ErrorBody


# Leads

LeadId = Annotated[int, Path(description="The lead's id.", examples=[512])]


class ScorePart(Schema):
    points: int
    max: int
    why: str


class LeadConsent(Schema):
    text: str = Field(description="The consent text the visitor ticked; empty when none was asked.")
    at: datetime | None = Field(description="When the visitor ticked it.")


class Lead(Schema):
    id: int
    assistant_id: int
    conversation_id: int | None = Field(description="The conversation it came from (null once deleted).")
    name: str
    email: str
    phone: str
    company: str
    custom: dict[str, str] = Field(description="The assistant's custom fields, by key.")
    consent: LeadConsent
    page_url: str
    trigger: str = Field(description="What asked for it: answers, intent, handoff (empty when unknown).")
    intent: str = Field(description="The buying-intent word or phrase that asked for it, if any.")
    status: model_choice(LeadModel, "status")
    notes: str
    score: int = Field(description="0–100, the sum of score_parts' points.")
    score_parts: dict[str, ScorePart] = Field(description="intent, engagement, completeness, answered.")
    created_at: datetime

    @staticmethod
    def resolve_consent(lead) -> dict:
        return {"text": lead.consent_text, "at": lead.consent_at}


class LeadPage(Schema):
    data: list[Lead]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class LeadFilter(Page):
    status: model_choice(LeadModel, "status", "Only leads in this state.") = None
    assistant_id: Annotated[int, Field(description="Only leads of this assistant.")] = None
    min_score: Annotated[int, Field(ge=0, le=100, description="Only leads scored at least this.")] = None
    since: Annotated[DateTime, Field(description="Created at or after this time (ISO 8601).")] = None
    until: Annotated[DateTime, Field(description="Created before this time (ISO 8601).")] = None


class LeadUpdate(Schema):
    model_config = ConfigDict(extra="forbid")

    status: model_choice(LeadModel, "status") = None
    notes: Annotated[str, Field(max_length=10000)] = None


# Analytics (docs/analytics.md: every figure comes from the daily rollups and the latest topic build)


class AnalyticsPeriodFilter(Schema):
    start: Annotated[
        date, Field(description="First day of the period (UTC, YYYY-MM-DD); by default 30 days ending on end.")
    ] = None
    end: Annotated[
        date,
        Field(description="Last day, inclusive (a period is at most 366 days); by default today (UTC)."),
    ] = None


class SourceUsageFilter(Page, AnalyticsPeriodFilter):
    pass


class GapFilter(Page):
    status: model_choice(ContentGapModel, "status", "Only gaps in this state.") = None


class AnalyticsPeriod(Schema):
    start: date
    end: date = Field(description="Inclusive.")
    days: int


class MetricValue(Schema):
    key: one_of(metric.key for metric in METRICS)
    label: str
    formula: str = Field(description="How it is counted, as the dashboard prints it.")
    unit: one_of(sorted({metric.unit for metric in METRICS})) = Field(description="count; rate (0–1); ms; usd; tokens.")
    value: float | None = Field(description="This period's; null when there is nothing to divide by.")
    previous: float | None = Field(description="The previous period's (as many days, just before).")
    change: float | None = Field(description="value − previous; null when either is null.")


class DayFigures(Schema):
    day: date
    conversations: int
    questions: int
    unanswered: int


class PageAskedFrom(Schema):
    url: str = Field(description="The page visitors asked from, without its query and fragment.")
    questions: int


class ModelUsage(Schema):
    model: str = Field(description="provider · model")
    answers: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class OverviewFigures(Schema):
    period: AnalyticsPeriod
    previous_period: AnalyticsPeriod
    metrics: list[MetricValue] = Field(description="Every metric of docs/analytics.md, with its formula.")
    per_day: list[DayFigures] = Field(description="Every day of the period, oldest first.")
    top_pages: list[PageAskedFrom] = Field(description="The 20 pages asked from most.")
    models: list[ModelUsage] = Field(description="Answers, tokens and cost by provider and model.")


class AnalyticsOverview(OverviewFigures):
    assistant_id: int


class TeamAnalyticsOverview(OverviewFigures):
    team_id: int
    assistants: int = Field(description="The team's assistants counted (all of them).")


class TopicBuildInfo(Schema):
    id: int
    start: date
    end: date = Field(description="Inclusive.")
    questions: int
    threshold: float = Field(description="The cosine distance under which questions are one topic.")
    finished_at: datetime | None


class TopicSummary(Schema):
    id: int
    label: str = Field(description="Its most central question.")
    terms: list[str] = Field(description="Its key terms.")
    questions: int
    visitors: int
    unanswered: int
    rated_down: int
    first_half: int = Field(description="Questions in the first half of the build's period (the trend).")
    second_half: int = Field(description="In the second half, with those that joined since the build.")
    joined: int = Field(description="Questions that joined this topic since the build (nearest topic).")
    examples: list[str]


class TopicPage(Schema):
    build: TopicBuildInfo | None = Field(description="The latest topic build; null before the first.")
    data: list[TopicSummary] = Field(description="Most questions first.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class GapCheck(Schema):
    text: str = Field(description="The question, asked again after content was added.")
    answered: bool | None = Field(description="Whether it is answered now; null until asked again.")
    source_title: str = Field(description="The first source the new answer cited.")
    source_url: str
    checked_at: datetime | None


class ContentGap(Schema):
    id: int
    label: str = Field(description="The topic's most central question.")
    terms: list[str]
    kind: model_choice(ContentGapModel, "kind")
    status: model_choice(ContentGapModel, "status")
    visitors: int = Field(description="Visitors whose questions failed.")
    questions: int
    unanswered: int
    rated_down: int
    best_title: str = Field(description="For answer_failed: the closest page found.")
    best_url: str
    best_rank: int | None
    best_score: float | None = Field(description="The closest page's similarity.")
    proposal: dict[str, Any] = Field(description="The fix proposed: an outline of the missing page and a Q&A pair.")
    checks: list[GapCheck] = Field(description="The gap's questions and what asking them again gave.")
    created_at: datetime
    checked_at: datetime | None
    closed_at: datetime | None

    @staticmethod
    def resolve_checks(gap: ContentGapModel) -> list:
        return list(gap.checks.all())


class ContentGapPage(Schema):
    data: list[ContentGap] = Field(description="Most visitors first.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class TeamTopicBuildInfo(TopicBuildInfo):
    assistant_id: int


class TeamTopic(TopicSummary):
    assistant_id: int = Field(description="The assistant whose questions these are.")


class TeamTopicPage(Schema):
    builds: list[TeamTopicBuildInfo] = Field(description="Each assistant's latest topic build (none before its first).")
    data: list[TeamTopic] = Field(description="Most questions first, over all the team's assistants.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class TeamContentGap(ContentGap):
    assistant_id: int


class TeamContentGapPage(Schema):
    data: list[TeamContentGap] = Field(description="Most visitors first, over all the team's assistants.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class LeadScoreBucket(Schema):
    low: int = Field(description="Lowest score in the bucket (scores are 0–100).")
    high: int = Field(description="Highest score, inclusive.")
    count: int = Field(description="Leads created in the period with a score in the bucket.")
    previous: int = Field(description="The same in the previous period.")


class LeadTopic(Schema):
    topic_id: int
    assistant_id: int
    label: str = Field(description="The topic's most central question (its latest build).")
    leads: int = Field(description="Leads whose conversation asked one of its questions (once per topic).")
    average_score: float


class LeadsByPage(Schema):
    url: str = Field(description="The page the lead's conversation started on, without query or fragment.")
    leads: int
    average_score: float


class LeadQualityPage(Schema):
    period: AnalyticsPeriod
    previous_period: AnalyticsPeriod
    total: int = Field(description="Leads created in the period.")
    buckets: list[LeadScoreBucket] = Field(description="The period's leads by score: 0–24, 25–49, 50–74, 75–100.")
    topics: list[LeadTopic] = Field(description="The 20 topics with most leads (most leads first).")
    data: list[LeadsByPage] = Field(description="Per page: leads and average score, most leads first.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class LeadQualityFilter(Page, AnalyticsPeriodFilter):
    pass


class CitedSource(Schema):
    url: str
    title: str
    cited: int = Field(description="Answers that cited it in the period.")
    rated_up: int = Field(description="Of those, rated helpful.")
    rated_down: int = Field(description="Of those, rated not helpful.")
    last_cited: datetime | None


class SourceUsagePage(Schema):
    period: AnalyticsPeriod
    never_cited: int = Field(
        description="The indexed pages and documents (of the assistant, or the team) not cited in the period."
    )
    data: list[CitedSource] = Field(description="Most cited first.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
