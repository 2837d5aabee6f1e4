"""Reads for teams and assistants. Every dashboard read goes through the user's teams."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.db.models import QuerySet
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


def get_for_member(queryset: QuerySet, *, user: User, pk: int, what: str):
    """The row of ``queryset`` (a model with an ``assistant``) when the user is in the assistant's
    team; 404 otherwise, the same answer as for a row that does not exist."""
    row = queryset.select_related("assistant").filter(pk=pk, assistant__team__memberships__user=user).first()
    if row is None:
        raise Http404(f"No such {what}")
    return row


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    return get_for_member(Conversation.objects, user=user, pk=conversation_id, what="conversation")


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
    return get_for_member(CustomDomain.objects, user=user, pk=domain_id, what="domain")


def verified_domain(*, host: str) -> CustomDomain | None:
    """The verified custom domain for a request's host (lower-case, no port), with its assistant."""
    if not host:
        return None
    return CustomDomain.objects.select_related("assistant").filter(host=host, verified_at__isnull=False).first()


def domain_host_taken(*, host: str) -> bool:
    return CustomDomain.objects.filter(host=host).exists()
