"""The public chat: the full-page assistant and its streaming endpoint.

Visitors are anonymous. A random token in an HttpOnly cookie ties a browser to its
conversations, so a reload resumes them; it grants nothing else.

An internal assistant (one with an access code) asks for its code first: a correct code gives the
browser a signed pass for that assistant, in a cookie on the full page or, inside the widget's
third-party iframe where cookies may be withheld, in the ``X-Chatsite-Access`` header. The pass
names the assistant and a digest of the code's hash, so changing or removing the code revokes it.
Until then every endpoint of the assistant answers 403 and tells nothing about it.
"""
from __future__ import annotations

import hashlib
import json
import secrets

from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import check_password
from django.core import signing
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from assistants import forms, selectors, services
from assistants.answering import answer_events
from assistants.models import Assistant
from chatsite.lib import json_body

MAX_QUESTION_CHARS = 2000
VISITOR_COOKIE = "cs_visitor"
VISITOR_COOKIE_AGE = 60 * 60 * 24 * 30
ACCESS_HEADER = "X-Chatsite-Access"
ACCESS_SALT = "chatsite.assistant-access"
ACCESS_AGE = 60 * 60 * 12  # a pass lasts half a day
ACCESS_TRIES_PER_MINUTE = 10


def _visitor_token(request) -> str:
    from assistants.widget_views import header_visitor_token  # the widget's iframe may get no cookie

    token = header_visitor_token(request) or request.COOKIES.get(VISITOR_COOKIE, "")
    return token if 20 <= len(token) <= 64 and token.isascii() else ""


def _set_visitor_cookie(response, token: str) -> None:
    response.set_cookie(VISITOR_COOKIE, token, max_age=VISITOR_COOKIE_AGE, httponly=True, samesite="Lax")


# --- Access codes -------------------------------------------------------------------------------


def _access_cookie(assistant: Assistant) -> str:
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


def access_granted(request, assistant: Assistant, extra_pass: str = "") -> bool:
    """Whether the request may use the assistant: always for a public one, else with a valid pass
    (the header, the cookie, or ``extra_pass`` — the embed page's ``?access=``)."""
    if not assistant.access_code_hash:
        return True
    candidates = (extra_pass, request.headers.get(ACCESS_HEADER, ""), request.COOKIES.get(_access_cookie(assistant), ""))
    return any(_pass_valid(assistant, value) for value in candidates if value)


def access_refused() -> JsonResponse:
    return JsonResponse({"error": "access code required"}, status=403)


def _too_many_tries(request) -> bool:
    """At most ACCESS_TRIES_PER_MINUTE code attempts per client address and minute (in Redis, shared
    by every web process)."""
    from chatsite.lib.shared_redis import redis_client

    # The minute starts at the first try (not at a clock minute, which a burst could straddle).
    counter = f"access:tries:{request.META.get('REMOTE_ADDR', '')}"
    pipe = redis_client().pipeline()
    pipe.set(counter, 0, ex=60, nx=True)
    pipe.incr(counter)
    _, count = pipe.execute()
    return count > ACCESS_TRIES_PER_MINUTE


def access_check_code(request, assistant: Assistant) -> tuple[bool, str, int]:
    """Check the code posted in the access form: (granted, error in plain words, HTTP status)."""
    form = forms.AccessCodeForm(request.POST)
    if _too_many_tries(request):
        return False, "Too many tries. Please wait a minute and try again.", 429
    if not form.is_valid() or not check_password(form.cleaned_data["code"], assistant.access_code_hash):
        return False, "That access code is not right. Please check it and try again.", 403
    return True, "", 200


def access_form(request, *, action: str, error: str = "", status: int = 403):
    """The page that asks for the code; it names nothing about the assistant."""
    return render(request, "chat/access.html", {"action": action, "error": error}, status=status)


@csrf_exempt  # the form must work inside a third-party iframe, where the CSRF cookie is withheld;
@require_POST  # a forged submission could only give a browser a pass to the forger's own assistant
def access_unlock(request, slug: str):
    assistant = get_object_or_404(Assistant, slug=slug)
    if not assistant.access_code_hash:
        return redirect("assistant_page", slug=slug)
    granted, error, status = access_check_code(request, assistant)
    if not granted:
        return access_form(request, action=request.path, error=error, status=status)
    response = redirect("assistant_page", slug=slug)
    response.set_cookie(
        _access_cookie(assistant), access_pass(assistant), max_age=ACCESS_AGE, httponly=True, samesite="Lax",
        secure=request.is_secure(),
    )
    return response


# --- The chat ------------------------------------------------------------------------------------


@require_GET
def assistant_page(request, slug: str):
    assistant = get_object_or_404(Assistant, slug=slug)
    if not access_granted(request, assistant):
        return access_form(request, action=reverse("access_unlock", args=[slug]))
    token = _visitor_token(request) or secrets.token_urlsafe(24)
    response = render(request, "chat/page.html", chat_context(assistant))
    _set_visitor_cookie(response, token)
    return response


def chat_context(assistant: Assistant, **extra) -> dict:
    """What chat/page.html needs: the assistant and its checked branding."""
    return {"assistant": assistant, "brand": selectors.assistant_branding(assistant=assistant), **extra}


@require_GET
def conversation_resume(request, slug: str):
    """The visitor's latest conversation with this assistant, so a reload picks up where it was."""
    assistant = get_object_or_404(Assistant, slug=slug)
    if not access_granted(request, assistant):
        return access_refused()
    token = _visitor_token(request)
    conversation = selectors.conversation_latest_for_visitor(assistant=assistant, visitor_token=token)
    if conversation is None:
        return JsonResponse({"conversation_id": None, "messages": []})
    return JsonResponse(
        {"conversation_id": conversation.pk, "messages": selectors.conversation_messages(conversation=conversation)}
    )


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@csrf_exempt  # anonymous and JSON-only: a cross-site form cannot send application/json
@require_POST
async def chat_stream(request, slug: str):
    """Answer one question as Server-Sent Events: meta, token…, citations, done (or error)."""
    if request.content_type != "application/json":
        return HttpResponseBadRequest("JSON expected")
    try:
        payload = json_body.loads(request.body or b"{}")
    except ValueError:
        return HttpResponseBadRequest("invalid JSON")
    question = str(payload.get("question") or "").strip()
    if not question:
        return HttpResponseBadRequest("question is empty")
    question = question[:MAX_QUESTION_CHARS]
    assistant = await Assistant.objects.filter(slug=slug).afirst()
    if assistant is None:
        return JsonResponse({"error": "no such assistant"}, status=404)
    if not access_granted(request, assistant):
        return access_refused()
    token = _visitor_token(request) or secrets.token_urlsafe(24)
    conversation_id = payload.get("conversation_id")
    conversation = await sync_to_async(services.conversation_for_visitor)(
        assistant=assistant,
        visitor_token=token,
        conversation_id=int(conversation_id) if str(conversation_id or "").isdigit() else None,
        page_url=str(payload.get("page_url") or ""),
    )

    async def stream():
        async for event in answer_events(assistant=assistant, conversation=conversation, question=question):
            yield _sse(event.name, event.data)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    _set_visitor_cookie(response, token)
    return response
