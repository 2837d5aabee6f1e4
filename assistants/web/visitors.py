"""Who a visitor is, and whether they may use an internal assistant.

Visitors are anonymous. A random token in an HttpOnly cookie ties a browser to its
conversations, so a reload resumes them; it grants nothing else.

An internal assistant (one with an access code) asks for its code first: a correct code gives the
browser a signed pass for that assistant, in a cookie on the full page or, inside the widget's
third-party iframe where cookies may be withheld, in the ``X-Chatsite-Access`` header. The pass
names the assistant and a digest of the code's hash, so changing or removing the code revokes it.
Until then every endpoint of the assistant answers 403 and tells nothing about it but its look: the
code's page wears the assistant's branding (colours, logo) and speaks its language (or the visitor's),
never its name, greeting or content.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core import signing
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from assistants import forms, selectors
from assistants.answering import admission
from assistants.models import Assistant, Conversation
from chatsite.lib import json_body, ratelimit
from chatsite.lib.clients import client_address

VISITOR_COOKIE = "cs_visitor"
VISITOR_COOKIE_AGE = 60 * 60 * 24 * 30
# Inside a third-party iframe the browser may withhold the cookie: the embedded chat keeps its token in
# localStorage and sends it in this header.
VISITOR_HEADER = "X-Chatsite-Visitor"
ACCESS_HEADER = "X-Chatsite-Access"
ACCESS_SALT = "chatsite.assistant-access"
ACCESS_AGE = 60 * 60 * 12  # a pass lasts half a day
ACCESS_TRIES_PER_MINUTE = 10


def chat_context(assistant: Assistant, **extra) -> dict:
    """What chat/page.html needs: the assistant and its checked branding."""
    return {"assistant": assistant, "brand": selectors.assistant_branding(assistant=assistant), **extra}


def visitor_token(request) -> str:
    """The visitor's token: the widget's header (its third-party iframe may get no cookie), else the
    full page's cookie; "" when neither holds a plausible token."""
    token = request.headers.get(VISITOR_HEADER, "") or request.COOKIES.get(VISITOR_COOKIE, "")
    return token if 20 <= len(token) <= 64 and token.isascii() else ""


def set_visitor_cookie(response, token: str) -> None:
    response.set_cookie(VISITOR_COOKIE, token, max_age=VISITOR_COOKIE_AGE, httponly=True, samesite="Lax")


def visitor_conversation(request, assistant: Assistant, conversation_id) -> Conversation | None:
    """The visitor's conversation ``conversation_id`` with ``assistant`` (its token must be the
    conversation's), or None."""
    token = visitor_token(request)
    if not token or not str(conversation_id or "").isdigit():
        return None
    return (
        Conversation.objects.select_related("assistant__team")
        .filter(pk=int(conversation_id), assistant=assistant, visitor_token=token)
        .first()
    )


def anonymous_json_post(view):
    """The widget's anonymous JSON endpoints (``POST /embed/<public_key>/...``) open alike: the
    assistant by its public key (404), the visitor's pass to an internal one (403), the body as a JSON
    object (400); then ``view(request, assistant, payload)``. CSRF-exempt like the chat endpoint: they
    are anonymous and JSON-only, and a third-party iframe gets no CSRF cookie."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def endpoint(request, public_key: str):
        assistant = get_object_or_404(Assistant.objects.select_related("team"), public_key=public_key)
        if not access_granted(request, assistant):
            return access_refused()
        payload = json_body.read_object(request)
        if payload is None:
            return HttpResponseBadRequest("JSON expected")
        return view(request, assistant, payload)

    return endpoint


# --- Access codes -------------------------------------------------------------------------------


def access_cookie_name(assistant: Assistant) -> str:
    return f"cs_access_{assistant.pk}"


def _code_digest(assistant: Assistant) -> str:
    return hashlib.sha256(assistant.access_code_hash.encode()).hexdigest()[:24]


def access_pass(assistant: Assistant) -> str:
    """A signed, expiring pass to one assistant, valid while its access code stays the same."""
    return signing.dumps({"a": assistant.pk, "c": _code_digest(assistant)}, salt=ACCESS_SALT, compress=True)


def _pass_valid(assistant: Assistant, value: str) -> bool:
    if not value or len(value) > 300:
        return False
    try:
        data = signing.loads(value, salt=ACCESS_SALT, max_age=ACCESS_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("a") == assistant.pk and data.get("c") == _code_digest(assistant)


def access_granted(request, assistant: Assistant) -> bool:
    """Whether the request may use the assistant: always for a public one, else with a valid pass (the
    widget's header, or the full page's cookie; never the address, which access logs keep)."""
    if not assistant.access_code_hash:
        return True
    candidates = (request.headers.get(ACCESS_HEADER, ""), request.COOKIES.get(access_cookie_name(assistant), ""))
    return any(_pass_valid(assistant, value) for value in candidates if value)


def access_refused() -> JsonResponse:
    return JsonResponse({"error": "access code required"}, status=403)


def _too_many_tries(request, assistant: Assistant) -> bool:
    """At most ACCESS_TRIES_PER_MINUTE code attempts per assistant and client address and minute (shared
    by every web process): one client's lockout on one assistant blocks neither other clients nor its
    other assistants, and the address is the real one (``chatsite.lib.clients``), not a header."""
    key = f"access:{assistant.pk}:{client_address(request)}"
    return not ratelimit.hit(key, limit=ACCESS_TRIES_PER_MINUTE, window=60).allowed


def access_check_code(request, assistant: Assistant) -> tuple[bool, str, int]:
    """Check the code posted in the access form: (granted, the error's key in ACCESS_STRINGS, HTTP status)."""
    form = forms.AccessCodeForm(request.POST)
    if _too_many_tries(request, assistant):
        return False, "too_many", 429
    if not form.is_valid() or not check_password(form.cleaned_data["code"], assistant.access_code_hash):
        return False, "wrong", 403
    return True, "", 200


# The access-code page's words: it has no script, so they are chosen here (static/js/i18n.js does
# the chat's).
ACCESS_STRINGS = {
    "en": {
        "title": "This assistant is private",
        "intro": "Enter the access code you were given.",
        "label": "Access code",
        "submit": "Continue",
        "wrong": "That access code is not right. Please check it and try again.",
        "too_many": "Too many tries. Please wait a minute and try again.",
        "close": "Close chat",
    },
    "fr": {
        "title": "Cet assistant est privé",
        "intro": "Saisissez le code d’accès qui vous a été donné.",
        "label": "Code d’accès",
        "submit": "Continuer",
        "wrong": "Ce code d’accès n’est pas le bon. Vérifiez-le et réessayez.",
        "too_many": "Trop d’essais. Patientez une minute, puis réessayez.",
        "close": "Fermer le chat",
    },
    "de": {
        "title": "Dieser Assistent ist privat",
        "intro": "Geben Sie den Zugangscode ein, den Sie erhalten haben.",
        "label": "Zugangscode",
        "submit": "Weiter",
        "wrong": "Dieser Zugangscode ist nicht richtig. Bitte prüfen Sie ihn und versuchen Sie es erneut.",
        "too_many": "Zu viele Versuche. Bitte warten Sie eine Minute und versuchen Sie es erneut.",
        "close": "Chat schließen",
    },
    "es": {
        "title": "Este asistente es privado",
        "intro": "Introduce el código de acceso que te dieron.",
        "label": "Código de acceso",
        "submit": "Continuar",
        "wrong": "Ese código de acceso no es correcto. Revísalo e inténtalo de nuevo.",
        "too_many": "Demasiados intentos. Espera un minuto e inténtalo de nuevo.",
        "close": "Cerrar el chat",
    },
    "zh": {
        "title": "此助手为私有",
        "intro": "请输入您获得的访问码。",
        "label": "访问码",
        "submit": "继续",
        "wrong": "访问码不正确，请检查后重试。",
        "too_many": "尝试次数过多，请等待一分钟后重试。",
        "close": "关闭聊天",
    },
}


def visitor_language(request, chosen: str = "") -> str:
    """The assistant's language when its team chose one, else the first of the browser's
    (Accept-Language, by preference) that the chat speaks, else English."""
    if chosen in ACCESS_STRINGS:
        return chosen
    wanted = []
    for position, part in enumerate(request.headers.get("Accept-Language", "")[:500].split(",")):
        code, _, params = part.strip().partition(";")
        try:
            weight = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            weight = 0.0
        wanted.append((-weight, position, code.split("-")[0].lower()))
    return next((code for _, _, code in sorted(wanted) if code in ACCESS_STRINGS), "en")


def access_form(request, *, assistant: Assistant, action: str, error: str = "", status: int = 403, embed: bool = False):
    """The page that asks for the code, in the assistant's look and language; it names nothing else
    about the assistant. ``error``: a key of ACCESS_STRINGS; ``embed``: inside the widget (a button
    closes the panel)."""
    brand = selectors.assistant_branding(assistant=assistant)
    language = visitor_language(request, brand["language"])
    words = ACCESS_STRINGS[language]
    context = {
        "action": action,
        "error": words.get(error, ""),
        "brand": brand,
        "language": language,
        "words": words,
        "embed": embed,
    }
    return render(request, "chat/access.html", context, status=status)


# --- Rate limits on what visitors send -------------------------------------------------------------


def rate_limited(request, assistant: Assistant, action: str) -> JsonResponse | None:
    """A 429 (with Retry-After) when the visitor, their address or the assistant as a whole has sent too
    many of ``action`` ("chat" questions, "contact" requests) in the window; else None, and the attempt
    is counted. The limits are settings (CHAT_RATE_*, CONTACT_RATE_*); a window lasts a minute for
    questions and ten minutes for contact requests."""
    window, *caps = {
        "chat": (60, settings.CHAT_RATE_VISITOR, settings.CHAT_RATE_ADDRESS, settings.CHAT_RATE_ASSISTANT),
        "contact": (600, settings.CONTACT_RATE_VISITOR, settings.CONTACT_RATE_ADDRESS, settings.CONTACT_RATE_ASSISTANT),
        "lead": (600, settings.LEAD_RATE_VISITOR, settings.LEAD_RATE_ADDRESS, settings.LEAD_RATE_ASSISTANT),
    }[action]
    token = visitor_token(request)
    keys = [
        f"{action}:visitor:{assistant.pk}:{token}" if token else "",
        f"{action}:address:{client_address(request)}",
        f"{action}:assistant:{assistant.pk}",
    ]
    verdicts = [ratelimit.hit(key, limit=cap, window=window) for key, cap in zip(keys, caps) if key and cap > 0]
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if not refused:
        return None
    retry_after = max(verdict.retry_after for verdict in refused)
    response = JsonResponse(
        {"error": "rate_limited", "message": "Too many requests: please wait a moment.", "retry_after": retry_after},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


# --- Streams open at once (back-pressure: assistants.answering.admission) ------------------------


def busy_response() -> JsonResponse:
    """429 for a visitor whose answers, or the assistant's, are already streaming at the cap."""
    response = JsonResponse(
        {
            "error": "busy",
            "message": "The assistant is busy answering; retrying shortly.",
            "retry_after": admission.STREAM_RETRY_AFTER,
        },
        status=429,
    )
    response["Retry-After"] = str(admission.STREAM_RETRY_AFTER)
    return response
