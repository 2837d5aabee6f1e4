"""The public chat: the full-page assistant and its streaming endpoint.

Visitors are anonymous (``visitors``: their token, and the pass an internal assistant asks for).
"""

from __future__ import annotations

import secrets

from asgiref.sync import sync_to_async
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from assistants import selectors, services
from assistants.answering import admission
from assistants.answering.pipeline import MAX_QUESTION_CHARS, Event, answer_events, ended_cleanly
from assistants.handoff import services as handoff_services
from assistants.models import Assistant
from assistants.web import visitors
from assistants.web.handoff import visitor_state
from assistants.web.widget import chat_csp
from chatsite.lib import json_body


@csrf_exempt  # the form must work inside a third-party iframe, where the CSRF cookie is withheld;
@require_POST  # a forged submission could only give a browser a pass to the forger's own assistant
def access_unlock(request, slug: str):
    assistant = get_object_or_404(Assistant, slug=slug)
    if not assistant.access_code_hash:
        return redirect("assistant_page", slug=slug)
    granted, error, status = visitors.access_check_code(request, assistant)
    if not granted:
        return visitors.access_form(
            request, assistant=assistant, action=request.get_full_path(), error=error, status=status
        )
    # Back to the assistant's page, or to the document a citation opened (only its own /d/ links).
    following = request.GET.get("next", "")
    document_link = following.startswith("/d/") and url_has_allowed_host_and_scheme(following, allowed_hosts=None)
    response = redirect(following) if document_link else redirect("assistant_page", slug=slug)
    response.set_cookie(
        visitors.access_cookie_name(assistant),
        visitors.access_pass(assistant),
        max_age=visitors.ACCESS_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


# --- The chat ------------------------------------------------------------------------------------


@require_GET
def assistant_page(request, slug: str):
    assistant = get_object_or_404(Assistant, slug=slug)
    if not visitors.access_granted(request, assistant):
        return visitors.access_form(request, assistant=assistant, action=reverse("access_unlock", args=[slug]))
    token = visitors.visitor_token(request) or secrets.token_urlsafe(24)
    context = visitors.chat_context(assistant)
    chosen = request.GET.get("conversation", "")
    context["resume_conversation"] = chosen if chosen.isdigit() and len(chosen) < 19 else ""
    response = render(request, "chat/page.html", context)
    response["Content-Security-Policy"] = chat_csp(assistant, framed_by_allowed_domains=False)
    visitors.set_visitor_cookie(response, token)
    return response


@require_GET
def conversation_resume(request, slug: str):
    """The visitor's latest conversation with this assistant, so a reload picks up where it was."""
    assistant = get_object_or_404(Assistant, slug=slug)
    if not visitors.access_granted(request, assistant):
        return visitors.access_refused()
    token = visitors.visitor_token(request)
    conversation = selectors.conversation_latest_for_visitor(assistant=assistant, visitor_token=token)
    if conversation is None:
        return JsonResponse({"conversation_id": None, "messages": []})
    return JsonResponse(
        {"conversation_id": conversation.pk, "messages": selectors.conversation_messages(conversation=conversation)}
    )


@csrf_exempt  # anonymous and JSON-only: a cross-site form cannot send application/json
@require_POST
async def chat_stream(request, slug: str):
    """Answer one question as Server-Sent Events: meta, token…, citations, done (or error)."""
    payload = json_body.read_object(request)
    if payload is None:
        return HttpResponseBadRequest("a JSON object expected")
    question = str(payload.get("question") or "").strip()
    if not question:
        return HttpResponseBadRequest("question is empty")
    question = question[:MAX_QUESTION_CHARS]
    # Its handoff settings in the same query: the turn reads them next (handoff_services.visitor_turn).
    assistant = await Assistant.objects.select_related("handoff_settings").filter(slug=slug).afirst()
    if assistant is None:
        return JsonResponse({"error": "no such assistant"}, status=404)
    if not visitors.access_granted(request, assistant):
        return visitors.access_refused()
    refused = await sync_to_async(visitors.rate_limited)(request, assistant, "chat")
    if refused is not None:
        return refused
    token = visitors.visitor_token(request) or secrets.token_urlsafe(24)
    places = await sync_to_async(admission.stream_places, thread_sensitive=False)(assistant, token)
    if places is None:
        return visitors.busy_response()  # the chat asks again after Retry-After
    conversation_id = payload.get("conversation_id")
    conversation_id = int(conversation_id) if str(conversation_id or "").isdigit() else None
    page_url = str(payload.get("page_url") or "")[:2000]

    def open_turn():
        conversation = services.conversation_for_visitor(
            assistant=assistant, visitor_token=token, conversation_id=conversation_id, page_url=page_url
        )
        # With a person (or waiting for one), or asking for one: the team gets the message, not the assistant.
        return conversation, handoff_services.visitor_turn(conversation=conversation, text=question, page_url=page_url)

    try:
        conversation, turn = await sync_to_async(open_turn)()  # one trip to the database thread
    except BaseException:
        await sync_to_async(admission.release_stream_places, thread_sensitive=False)(places)
        raise
    # A conversation made for this question has no history to read.
    history = [] if conversation.pk != conversation_id else None

    async def stream():
        try:
            if turn.held:
                yield Event("meta", {"conversation_id": conversation.pk}).sse()
                state = await sync_to_async(visitor_state)(conversation, from_handoff_start=True)
                yield Event("handoff", state).sse()
                yield Event("done", {"message_id": turn.message.pk, "held": True}).sse()
                return
            unanswered = None
            async for event in answer_events(
                assistant=assistant, conversation=conversation, question=question, history=history
            ):
                if event.name == "done":
                    unanswered = event.data["unanswered"]
                yield event.sse()
            # Twice without an answer: the team takes over (the chat shows it, and opens its live stream).
            # An answer that had one cannot be the second of two without (no trip to the database then).
            if unanswered is not False:
                state = await sync_to_async(_handed_over_state)(conversation)
                if state is not None:
                    yield Event("handoff", state).sse()
        finally:  # done, failed, or the visitor left: the places are free again
            await sync_to_async(admission.release_stream_places, thread_sensitive=False)(places)

    response = StreamingHttpResponse(ended_cleanly(stream()), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    visitors.set_visitor_cookie(response, token)
    return response


def _handed_over_state(conversation):
    """After an answer: the handoff's state for the chat when it was the second in a row without an
    answer (the team takes over), else None."""
    if handoff_services.after_answer(conversation=conversation) is None:
        return None
    return visitor_state(conversation)
