"""The public chat: the full-page assistant and its streaming endpoint.

Visitors are anonymous. A random token in an HttpOnly cookie ties a browser to its
conversations, so a reload resumes them; it grants nothing else.
"""
from __future__ import annotations

import json
import secrets

from asgiref.sync import sync_to_async
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from assistants import selectors, services
from assistants.answering import answer_events
from assistants.models import Assistant

MAX_QUESTION_CHARS = 2000
VISITOR_COOKIE = "cs_visitor"
VISITOR_COOKIE_AGE = 60 * 60 * 24 * 30


def _visitor_token(request) -> str:
    from assistants.widget_views import header_visitor_token  # the widget's iframe may get no cookie

    token = header_visitor_token(request) or request.COOKIES.get(VISITOR_COOKIE, "")
    return token if 20 <= len(token) <= 64 and token.isascii() else ""


def _set_visitor_cookie(response, token: str) -> None:
    response.set_cookie(VISITOR_COOKIE, token, max_age=VISITOR_COOKIE_AGE, httponly=True, samesite="Lax")


@require_GET
def assistant_page(request, slug: str):
    assistant = get_object_or_404(Assistant, slug=slug)
    token = _visitor_token(request) or secrets.token_urlsafe(24)
    response = render(request, "chat/page.html", {"assistant": assistant})
    _set_visitor_cookie(response, token)
    return response


@require_GET
def conversation_resume(request, slug: str):
    """The visitor's latest conversation with this assistant, so a reload picks up where it was."""
    assistant = get_object_or_404(Assistant, slug=slug)
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
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return HttpResponseBadRequest("invalid JSON")
    question = str(payload.get("question") or "").strip()
    if not question:
        return HttpResponseBadRequest("question is empty")
    question = question[:MAX_QUESTION_CHARS]
    assistant = await Assistant.objects.filter(slug=slug).afirst()
    if assistant is None:
        return JsonResponse({"error": "no such assistant"}, status=404)
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
