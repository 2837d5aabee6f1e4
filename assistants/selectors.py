"""Reads for teams and assistants. Every dashboard read goes through the user's teams."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.core import signing
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistants.models import (
    Assistant,
    Conversation,
    CustomDomain,
    Feedback,
    Invitation,
    Lead,
    Membership,
    Message,
    Team,
)
from chatsite.lib import contrast
from ingestion.models import Document, Source


def teams_for_user(*, user: User) -> QuerySet[Team]:
    """The user's teams by name, each with ``viewer_role``, the user's role in it."""
    return (
        Team.objects.filter(memberships__user=user).annotate(viewer_role=F("memberships__role")).order_by("name", "id")
    )


def team_id_reaching(*, user: User, path: str, pk: int) -> int | None:
    """The id of the team of ``user``'s whose ``path`` (a lookup from Team, e.g. "assistants") holds ``pk``."""
    return Team.objects.filter(**{path: pk}, memberships__user=user).values_list("pk", flat=True).first()


def team_members(*, team: Team) -> QuerySet[Membership]:
    """Owners first, then admins, then members; by name within a role."""
    order = {Membership.Role.OWNER: 0, Membership.Role.ADMIN: 1, Membership.Role.MEMBER: 2}
    rank = Case(*(When(role=role, then=Value(n)) for role, n in order.items()), output_field=IntegerField())
    return team.memberships.select_related("user").annotate(rank=rank).order_by("rank", "user__username")


def team_owner_count(*, team: Team) -> int:
    return team.memberships.filter(role=Membership.Role.OWNER).count()


def invitations_pending(*, team: Team) -> list[Invitation]:
    """The team's invitations not yet used, newest first, each with ``expires_at`` and ``expired``."""
    now = timezone.now()
    invitations = list(
        team.invitations.filter(accepted_at__isnull=True).select_related("invited_by").order_by("-sent_at")
    )
    for invitation in invitations:
        invitation.expires_at = invitation_expires_at(invitation)
        invitation.expired = invitation.expires_at <= now
    return invitations


def invitation_expires_at(invitation: Invitation) -> datetime:
    return invitation.sent_at + timedelta(days=settings.INVITATION_DAYS)


INVITATION_SALT = "chatsite.invitation"


def invitation_token_hash(secret: str) -> str:
    """What is stored of an invitation link's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def invitation_from_link(*, token: str) -> tuple[Invitation | None, str]:
    """The invitation a link carries, or None and why not, in plain words."""
    try:
        secret = signing.loads(token, salt=INVITATION_SALT, max_age=timedelta(days=settings.INVITATION_DAYS))
    except signing.SignatureExpired:
        return None, "This invitation has expired. Ask the person who invited you to send a new one."
    except signing.BadSignature:
        return None, "This invitation link is not valid. Check that you copied all of it."
    invitation = (
        Invitation.objects.select_related("team", "invited_by")
        .filter(token_hash=invitation_token_hash(str(secret)))
        .first()
    )
    if invitation is None:
        return None, "This invitation is no longer valid: it was cancelled or replaced by a newer one."
    if invitation.accepted_at is not None:
        return None, "This invitation has already been used."
    return invitation, ""


def assistants_for_user(*, user: User) -> QuerySet[Assistant]:
    return Assistant.objects.filter(team__memberships__user=user).select_related("team").order_by("team__name", "name")


def conversation_latest_for_visitor(*, assistant: Assistant, visitor_token: str) -> Conversation | None:
    """The visitor's most recent conversation with the assistant (None without a token)."""
    if not visitor_token:
        return None
    return Conversation.objects.filter(assistant=assistant, visitor_token=visitor_token).order_by("-updated_at").first()


def conversation_messages(*, conversation: Conversation) -> list[dict]:
    return [
        {"role": m.role, "text": m.text, "citations": m.citations, "created_at": m.created_at.isoformat()}
        for m in conversation.messages.all()
    ]


_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# The languages an assistant can be set to speak (its chat's labels and answers), by code, each named in
# itself: the one list the dashboard's form, the API and the rendered chat read ("" = the visitor's browser).
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "zh": "中文"}


def _color(value: str, default: str) -> str:
    return value if _HEX_COLOR.fullmatch(value or "") else default


def _image_url(value: str) -> str:
    """An http(s) URL without anything that could leave an attribute or a CSP source; else ""."""
    value = (value or "").strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in value for c in " \t\n\r\"'<>;,\\"):
        return ""
    return value


def assistant_branding(*, assistant: Assistant) -> dict:
    """The assistant's public look, checked again where it is rendered: colours are #rrggbb, images are
    http(s) URLs, choices are known values (anything else falls back to the default)."""
    position = assistant.launcher_position if assistant.launcher_position in ("right", "left") else "right"
    icon = assistant.launcher_icon if assistant.launcher_icon in ("chat", "help", "spark") else "chat"
    questions = [str(q)[:120] for q in (assistant.suggested_questions or []) if isinstance(q, str) and q.strip()][:6]
    primary = _color(assistant.primary_color, "#2563eb")
    background = _color(assistant.background_color, "#ffffff")
    return {
        "primary_color": primary,
        "background_color": background,
        **readable_colors(primary=primary, background=background),
        "avatar_url": _image_url(assistant.avatar_url),
        "logo_url": _image_url(assistant.logo_url),
        "launcher_position": position,
        "launcher_icon": icon,
        "theme": assistant.theme if assistant.theme in ("auto", "light", "dark") else "auto",
        "suggested_questions": questions,
        "show_powered_by": bool(assistant.show_powered_by),
        "language": assistant.language if assistant.language in LANGUAGES else "",
    }


# The chat's own colours (static/css/chat.css) that brand colours are read against.
DARK_PAGE = "#111827"
DARK_BUBBLE = "#1f2937"
LIGHT_BUBBLE = "#f3f4f6"
LIGHT_MUTED = "#6b7280"
DARK_MUTED = "#9ca3af"


def readable_colors(*, primary: str, background: str) -> dict:
    """Colours derived from the brand so that every text reaches WCAG AA (4.5:1), whatever the brand:
    ``on_primary``, text on the brand colour (buttons, the visitor's bubbles, the launcher);
    ``primary_text_light`` / ``primary_text_dark``, the brand as text and borders (chips, links) on
    the light theme's background and bubbles, and on the dark theme's; ``text_light`` and
    ``muted_light``, text and secondary text on the light theme's background, and ``surface_dark``
    when that background is so dark that they are light."""
    text = contrast.readable_on(background)
    surface_dark = text == contrast.LIGHT_TEXT
    bubble = contrast.mix(background, "#ffffff", 0.08) if surface_dark else LIGHT_BUBBLE
    return {
        "on_primary": contrast.readable_on(primary),
        "primary_text_light": contrast.accent_on(contrast.accent_on(primary, background), bubble),
        "primary_text_dark": contrast.accent_on(primary, DARK_BUBBLE),
        "surface_dark": surface_dark,
        "text_light": text,
        "muted_light": contrast.accent_on(
            contrast.accent_on(DARK_MUTED if surface_dark else LIGHT_MUTED, background), bubble
        ),
    }


def image_origins(*, branding: dict) -> list[str]:
    """The origins of the avatar and logo, for the embedded chat's CSP img-src."""
    origins = []
    for url in (branding["avatar_url"], branding["logo_url"]):
        if url:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()
            if re.fullmatch(r"https?://[a-z0-9.-]+(:\d{1,5})?", origin) and origin not in origins:
                origins.append(origin)
    return origins


def domains_for_assistant(*, assistant: Assistant) -> QuerySet[CustomDomain]:
    return assistant.domains.order_by("host")


def verified_domain(*, host: str) -> CustomDomain | None:
    """The verified custom domain for a request's host (lower-case, no port), with its assistant."""
    if not host:
        return None
    return CustomDomain.objects.select_related("assistant").filter(host=host, verified_at__isnull=False).first()


def domain_host_taken(*, host: str, assistant: Assistant) -> bool:
    """Whether ``host`` is verified for any assistant, or already claimed by this one (an unverified claim
    of another team does not count: whoever proves control first has the host)."""
    return CustomDomain.objects.filter(host=host).filter(Q(verified_at__isnull=False) | Q(assistant=assistant)).exists()


# --- The conversation log -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationFlag:
    """Something a conversation may carry that the team wants to find: ``rows`` are the rows that
    raise it, pointing at the conversation by ``OuterRef("pk")``."""

    name: str
    label: str
    rows: Callable[[], QuerySet]


def _contact_requests() -> QuerySet:
    return Feedback.objects.filter(conversation=OuterRef("pk"), kind=Feedback.Kind.CONTACT)


def _leads_left() -> QuerySet:
    """The conversation itself when it holds a lead (assistants/leads/) or a contact request with an email."""
    with_email = _contact_requests().filter(details__has_key="email").exclude(details__email="")
    return Conversation.objects.filter(pk=OuterRef("pk")).filter(
        Exists(Lead.objects.filter(conversation=OuterRef("pk"))) | Exists(with_email)
    )


# Every flag of the log, its filters and its badges, in the order shown. Add a flag here and the log,
# its filter and the conversation page show it.
CONVERSATION_FLAGS = (
    ConversationFlag(
        "unanswered",
        "Unanswered",
        lambda: Message.objects.filter(conversation=OuterRef("pk"), unanswered=True),
    ),
    ConversationFlag("handed_off", "Handed off", _contact_requests),
    ConversationFlag("lead", "Lead left", lambda: _leads_left()),
)
FLAGS_BY_NAME = {flag.name: flag for flag in CONVERSATION_FLAGS}


def conversations_with_flags(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """``flag_<name>`` (bool) on each conversation for each of :data:`CONVERSATION_FLAGS`."""
    return conversations.annotate(**{f"flag_{flag.name}": Exists(flag.rows()) for flag in CONVERSATION_FLAGS})


def flags_of(conversation: Conversation) -> list[ConversationFlag]:
    """The flags a conversation annotated by :func:`conversations_with_flags` carries."""
    return [flag for flag in CONVERSATION_FLAGS if getattr(conversation, f"flag_{flag.name}", False)]


def _count(rows: QuerySet) -> Coalesce:
    counted = rows.order_by().values("conversation").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def search_query(text: str) -> SearchQuery | None:
    """Every word of ``text`` as the beginning of a word ("instal" finds "installation"), any
    language (PostgreSQL's ``simple`` configuration); None without a word."""
    words = re.findall(r"\w+", text.lower())[:12]
    if not words:
        return None
    return SearchQuery(" & ".join(f"{word}:*" for word in words), config="simple", search_type="raw")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def conversation_log(
    *,
    conversations: QuerySet[Conversation],
    search: str = "",
    flags: list[str] | tuple = (),
    rating: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Conversation]:
    """The conversations of a log, newest first, each with its first question, its number of turns
    (questions), its thumbs up and down (``thumbs_up``, ``thumbs_down``) and its flags.

    Filters: ``search`` every word in a question or an answer; ``flags`` the names of flags it
    must all carry; ``rating`` "up" or "down" (an answer rated so) or "none" (no rating); started
    from the day ``since`` to the day ``until`` (both included, in the site's time zone)."""
    questions = Message.objects.filter(conversation=OuterRef("pk"), role=Message.Role.USER)
    ratings = Feedback.objects.filter(conversation=OuterRef("pk"), kind=Feedback.Kind.RATING)
    log = conversations_with_flags(conversations.select_related("assistant")).annotate(
        first_question=Subquery(questions.order_by("created_at", "id").values("text")[:1]),
        turns=_count(questions),
        thumbs_up=_count(ratings.filter(rating=1)),
        thumbs_down=_count(ratings.filter(rating=-1)),
    )
    for name in flags:
        log = log.filter(**{f"flag_{FLAGS_BY_NAME[name].name}": True})
    if rating == "up":
        log = log.filter(Exists(ratings.filter(rating=1)))
    elif rating == "down":
        log = log.filter(Exists(ratings.filter(rating=-1)))
    elif rating == "none":
        log = log.filter(~Exists(ratings))
    query = search_query(search)
    if query is not None:
        matches = Message.objects.annotate(document=SearchVector("text", config="simple")).filter(
            conversation=OuterRef("pk"), document=query
        )
        log = log.filter(Exists(matches))
    if since is not None:
        log = log.filter(created_at__gte=_day_start(since))
    if until is not None:
        log = log.filter(created_at__lt=_day_start(until + timedelta(days=1)))
    return log.order_by("-created_at", "-id")


def conversation_export_rows(
    *, conversations: QuerySet[Conversation], since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict]:
    """One row per message of ``conversations``, oldest conversation first: the rows of the API's
    export (assistants/api/export.py writes them as CSV or JSONL).

    ``since`` and ``until`` bound the message's ``created_at`` (inclusive, exclusive). Read in
    batches, so an export of any size holds only a batch in memory."""
    messages = Message.objects.filter(conversation__in=conversations.order_by().values("pk"))
    if since is not None:
        messages = messages.filter(created_at__gte=since)
    if until is not None:
        messages = messages.filter(created_at__lt=until)
    messages = messages.select_related("conversation").order_by("conversation_id", "created_at", "id")
    for message in messages.iterator(chunk_size=500):
        yield {
            "conversation_id": message.conversation_id,
            "created_at": message.created_at.isoformat(),
            "role": message.role,
            "text": message.text,
            "citations": message.citations,
            "page_url": message.conversation.page_url,
        }


# --- One conversation ---------------------------------------------------------------------------


def _qa_title(question: str) -> str:
    """A question as ``ingestion.services.qa_add`` titles its Q&A pair."""
    return " ".join(question.split())[:500]


def unanswered_reason(message: Message) -> dict:
    """Why an answer was flagged unanswered, in plain words: ``summary``, ``details`` (numbers, or
    ""), and the ``sentences`` its sources did not support."""
    grounding = message.grounding or {}
    retrieval = grounding.get("retrieval") or {}
    if retrieval.get("weak"):
        return {
            "summary": "No passage of the content matched the question well enough, so the assistant said it "
            "did not know and offered a person.",
            "details": f"Closest passage: similarity {float(retrieval.get('similarity') or 0):.2f}; "
            f"{float(retrieval.get('coverage') or 0):.0%} of the question's words found in the content.",
            "sentences": [],
        }
    sentences = [s.get("text", "") for s in grounding.get("sentences") or [] if s.get("supported") is False]
    return {
        "summary": "The sources the answer cites do not support what it says"
        + (", in these sentences:" if sentences else "."),
        "details": "",
        "sentences": sentences,
    }


def conversation_transcript(*, conversation: Conversation) -> dict:
    """Everything a visitor left in a conversation, for its page: the ``transcript`` (its messages in
    order, each answer with ``question``, its ``rating`` feedback, why it was ``unanswered``, and the
    Q&A pair that now ``fixed`` its question), the ``contacts`` (contact requests), the ``flags`` and
    the number of ``turns``."""
    messages = list(conversation.messages.prefetch_related("feedback"))
    question = None
    for message in messages:
        if message.role == Message.Role.USER:
            question = message
            continue
        message.question = question
        message.rating = next((f for f in message.feedback.all() if f.kind == Feedback.Kind.RATING), None)
        message.why_unanswered = unanswered_reason(message) if message.unanswered else None
    titles = {_qa_title(m.question.text) for m in messages if getattr(m, "question", None)}
    fixes = {
        document.title: document
        for document in Document.objects.filter(
            source__assistant_id=conversation.assistant_id, source__kind=Source.Kind.QA, title__in=titles
        ).order_by("id")
    }
    for message in messages:
        if getattr(message, "question", None):
            message.fixed = fixes.get(_qa_title(message.question.text))
    flagged = conversations_with_flags(Conversation.objects.filter(pk=conversation.pk)).get()
    return {
        "transcript": messages,
        "contacts": list(conversation.feedback.filter(kind=Feedback.Kind.CONTACT).order_by("created_at", "id")),
        "flags": flags_of(flagged),
        "turns": sum(1 for m in messages if m.role == Message.Role.USER),
    }


def onboarding_steps(*, assistant: Assistant) -> dict:
    """The getting-started checklist, from the assistant's real state: content indexed (a source with
    an indexed document), tried (a conversation, by the team or a visitor), installed (the widget's
    loader was allowed to open on a site)."""
    sources = Source.objects.filter(assistant=assistant)
    indexed = Document.objects.filter(source__assistant=assistant, status=Document.Status.READY).count()
    crawling = sources.filter(status__in=[Source.Status.QUEUED, Source.Status.RUNNING]).exists()
    pending = Document.objects.filter(source__assistant=assistant, status=Document.Status.PENDING).count()
    steps = {
        "content": indexed > 0,
        "tried": Conversation.objects.filter(assistant=assistant).exists(),
        "installed": assistant.widget_seen_at is not None,
    }
    return {
        **steps,
        "done": sum(steps.values()),
        "complete": all(steps.values()),
        "has_sources": sources.exists(),
        "indexed": indexed,
        "pending": pending,
        "crawling": crawling,
        "seen_at": assistant.widget_seen_at.isoformat() if assistant.widget_seen_at else None,
        "seen_origin": assistant.widget_seen_origin,
    }


def sources_recent(*, assistant: Assistant, limit: int = 5) -> QuerySet[Source]:
    return Source.objects.filter(assistant=assistant).select_related("last_run").order_by("-created_at")[:limit]
