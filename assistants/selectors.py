"""Reads for teams and assistants. Every dashboard read goes through the user's teams."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404

from assistants.models import Assistant, Conversation, CustomDomain, Membership, Team


def teams_for_user(*, user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user: User, team_id: int) -> Membership:
    membership = Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()
    if membership is None:
        raise Http404("No such team")
    return membership


def assistants_for_user(*, user: User) -> QuerySet[Assistant]:
    return Assistant.objects.filter(team__memberships__user=user).select_related("team").order_by("team__name", "name")


def assistant_get_for_user(*, user: User, assistant_id: int) -> Assistant:
    """The assistant when the user is in its team; 404 otherwise (never another team's data)."""
    assistant = assistants_for_user(user=user).filter(pk=assistant_id).first()
    if assistant is None:
        raise Http404("No such assistant")
    return assistant


def _get_for_member(queryset: QuerySet, *, user: User, pk: int, what: str):
    """The row of ``queryset`` (a model with an ``assistant``) when the user is in the assistant's
    team; 404 otherwise, the same answer as for a row that does not exist."""
    row = queryset.select_related("assistant").filter(pk=pk, assistant__team__memberships__user=user).first()
    if row is None:
        raise Http404(f"No such {what}")
    return row


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    return _get_for_member(Conversation.objects, user=user, pk=conversation_id, what="conversation")


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
LANGUAGES = ("en", "fr", "de", "es", "zh")


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
    return {
        "primary_color": _color(assistant.primary_color, "#2563eb"),
        "background_color": _color(assistant.background_color, "#ffffff"),
        "avatar_url": _image_url(assistant.avatar_url),
        "logo_url": _image_url(assistant.logo_url),
        "launcher_position": position,
        "launcher_icon": icon,
        "theme": assistant.theme if assistant.theme in ("auto", "light", "dark") else "auto",
        "suggested_questions": questions,
        "show_powered_by": bool(assistant.show_powered_by),
        "language": assistant.language if assistant.language in LANGUAGES else "",
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


def domain_get_for_user(*, user: User, domain_id: int) -> CustomDomain:
    return _get_for_member(CustomDomain.objects, user=user, pk=domain_id, what="domain")


def verified_domain(*, host: str) -> CustomDomain | None:
    """The verified custom domain for a request's host (lower-case, no port), with its assistant."""
    if not host:
        return None
    return CustomDomain.objects.select_related("assistant").filter(host=host, verified_at__isnull=False).first()


def domain_host_taken(*, host: str) -> bool:
    return CustomDomain.objects.filter(host=host).exists()


GOLDEN_CANDIDATES = 50


def golden_question_get_for_user(*, user: User, golden_id: int):
    from assistants.models import GoldenQuestion

    return _get_for_member(GoldenQuestion.objects, user=user, pk=golden_id, what="question")


def golden_candidates(*, assistant: Assistant) -> list[dict]:
    """Visitors' questions worth adding to the golden set, newest first: those whose answer got a
    thumbs down, and the last question before each request for a person (a handoff). Questions
    already in the set are left out. Each: {"question", "origin", "message_id", "answer", "cited"}."""
    from assistants.models import Feedback, GoldenQuestion, Message

    taken = set(GoldenQuestion.objects.filter(assistant=assistant).values_list("question", flat=True))
    feedback = list(
        Feedback.objects.filter(conversation__assistant=assistant)
        .filter(Q(kind=Feedback.Kind.RATING, rating=-1) | Q(kind=Feedback.Kind.CONTACT))
        .select_related("message")
        .order_by("-created_at")[: GOLDEN_CANDIDATES * 2]
    )
    asked_in: dict[int, list] = {}  # conversation → its visitor's messages, oldest first (one query for all)
    for message in Message.objects.filter(
        conversation_id__in={item.conversation_id for item in feedback}, role=Message.Role.USER
    ).order_by("created_at", "id"):
        asked_in.setdefault(message.conversation_id, []).append(message)
    out: list[dict] = []
    for item in feedback:
        if item.kind == Feedback.Kind.RATING:
            answer, origin = item.message, "thumbs_down"
            bound = (answer.created_at, answer.id)  # the question just before the rated answer
        else:
            answer, origin = None, "handoff"
            bound = (item.created_at, float("inf"))  # the last question asked by the time of the request
        earlier = [message for message in asked_in.get(item.conversation_id, []) if (message.created_at, message.id) < bound]
        asked = earlier[-1] if earlier else None
        if asked is None:
            continue
        question = " ".join(asked.text.split())[:500]
        if question in taken:
            continue
        taken.add(question)
        out.append(
            {
                "question": question, "origin": origin, "message_id": asked.pk,
                "answer": answer.text if answer else "",
                "cited": [citation.get("url", "") for citation in (answer.citations if answer else [])][:3],
            }
        )
        if len(out) >= GOLDEN_CANDIDATES:
            break
    return out
