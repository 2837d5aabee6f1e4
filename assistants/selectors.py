"""Reads for teams and assistants. Every dashboard read goes through the user's teams."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.db.models import QuerySet

from assistants.models import Assistant, Conversation, CustomDomain, Team
from chatsite.lib import contrast
from ingestion.models import Document, Source


def teams_for_user(*, user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


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


def domain_host_taken(*, host: str) -> bool:
    return CustomDomain.objects.filter(host=host).exists()


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
