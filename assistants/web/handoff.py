"""The visitor's side of a handoff: asking for a person, and the live stream of the team's replies.

Both are the visitor's, like the other chat endpoints: the visitor's token (header or cookie) must be
the conversation's, and an internal assistant's pass is needed as everywhere else. The stream is
Server-Sent Events read with ``fetch`` (the widget's iframe sends its token in a header, which
``EventSource`` cannot), resumed with ``Last-Event-ID`` (``assistants.handoff.live``).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from assistants import selectors as assistant_selectors
from assistants import services
from assistants.handoff import live, selectors
from assistants.handoff import services as handoff_services
from assistants.models import Assistant, Conversation, HandoffState
from assistants.web import visitors
from chatsite.db import release_connection
from chatsite.lib import ratelimit
from chatsite.lib.clients import client_address

# Opening a live stream, per minute: a page reconnects after a cut (backing off) and every
# ``live.STREAM_SECONDS``; more than this is a loop or an attack, and each open stream holds a
# Redis connection.
LIVE_OPENS_PER_VISITOR = 20
LIVE_OPENS_PER_ADDRESS = 60
# Typing signals from one address, per minute (the chat sends at most one per 2 s while typing).
TYPING_PER_ADDRESS = 120


def visitor_state(conversation: Conversation, *, from_handoff_start: bool = False) -> dict:
    """The handoff as the chat follows it: ``state``; ``cursor`` (where its live stream starts: now, or
    with ``from_handoff_start`` where the current handoff began, for a chat that was not following it:
    a member took the conversation over; a chat already following keeps its own cursor);
    ``agent`` ("Dana from Acme" once someone has it); ``unavailable`` (nobody can take it now: the
    chat offers to leave an email); ``enabled`` (False: only the contact form)."""
    handoff = selectors.handoff_current(conversation=conversation)
    active = conversation.handoff_state in selectors.ACTIVE
    settings = selectors.handoff_settings(assistant=conversation.assistant)
    return {
        "conversation_id": conversation.pk,
        "state": conversation.handoff_state,
        "cursor": str(
            selectors.cursor_for_visitor_handoff(conversation=conversation)
            if from_handoff_start and active
            else selectors.cursor_for_visitor(conversation_id=conversation.pk)
        ),
        "agent": selectors.agent_label(handoff.assigned_to, conversation.assistant.team)
        if active and handoff and conversation.handoff_state == HandoffState.OPEN
        else "",
        "unavailable": bool(active and handoff and handoff.unavailable_at),
        "enabled": settings.enabled,
    }


@visitors.anonymous_json_post
def embed_handoff(request, assistant: Assistant, payload: dict):
    """ "Talk to a person": ``{conversation_id, page_url}`` → the handoff's state (``visitor_state``).
    A visitor without a conversation yet gets one. ``enabled: false``: the team takes no live
    handoffs, the chat shows the contact form instead."""
    token = visitors.visitor_token(request)
    if not token:
        return JsonResponse({"error": "visitor unknown"}, status=403)
    refused = visitors.rate_limited(request, assistant, "contact")
    if refused is not None:
        return refused
    conversation_id = str(payload.get("conversation_id") or "")
    page_url = str(payload.get("page_url") or "")[:2000]
    conversation = services.conversation_for_visitor(
        assistant=assistant,
        visitor_token=token,
        conversation_id=int(conversation_id) if conversation_id.isdigit() else None,
        page_url=page_url,
    )
    handoff_services.handoff_request(
        conversation=conversation, reason="visitor_asked", trigger="the “Talk to a person” button", page_url=page_url
    )
    return JsonResponse(visitor_state(conversation))


@visitors.anonymous_json_post
def embed_typing(request, assistant: Assistant, payload: dict):
    """The visitor is typing (``{conversation_id}``, sent by the chat at most every few seconds while a
    person has the conversation): the team's inbox shows it. Nothing is stored; a flood publishes at
    most one signal per ``live.TYPING_EVERY``. 204 either way."""
    verdict = ratelimit.hit(f"typing:address:{client_address(request)}", limit=TYPING_PER_ADDRESS, window=60)
    if not verdict.allowed:  # a flood: answered before the conversation is looked up
        response = JsonResponse({"error": "rate_limited", "retry_after": verdict.retry_after}, status=429)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    conversation = visitors.visitor_conversation(request, assistant, payload.get("conversation_id"))
    if conversation is None:
        return JsonResponse({"error": "no such conversation of yours"}, status=404)
    if conversation.handoff_state in selectors.ACTIVE:
        live.typing_visitor(team_id=assistant.team_id, conversation_id=conversation.pk)
    return HttpResponse(status=204)


@require_GET
async def embed_live(request, public_key: str):
    """The visitor's live stream of one conversation (``?conversation_id=``): the team's messages
    (``message``) and the handoff's changes (``handoff``), each with its cursor as the SSE id."""
    assistant = await Assistant.objects.select_related("team").filter(public_key=public_key).afirst()
    if assistant is None:
        return JsonResponse({"error": "no such assistant"}, status=404)
    if not visitors.access_granted(request, assistant):
        return visitors.access_refused()
    conversation = await sync_to_async(visitors.visitor_conversation)(
        request, assistant, request.GET.get("conversation_id")
    )
    if conversation is None:
        return JsonResponse({"error": "no such conversation of yours"}, status=404)
    refused = await sync_to_async(_live_refused)(request, conversation)
    if refused is not None:
        return refused

    def fallback():
        try:
            return selectors.cursor_for_visitor(conversation_id=conversation.pk)
        finally:
            release_connection()

    cursor = live.start_cursor(request) or await sync_to_async(fallback)()

    def tick():
        if conversation.handoff_state != HandoffState.BOT:
            handoff_services.handoff_check_wait(conversation_id=conversation.pk)

    def read_after(after):
        conversation.refresh_from_db(fields=["handoff_state"])
        return selectors.visitor_items_after(conversation=conversation, cursor=after)

    body = live.stream(
        channel=live.conversation_channel(conversation.pk),
        cursor=cursor,
        read_after=read_after,
        tick=tick,
        presence=live.presence_key(conversation.pk),
    )
    return event_stream(body)


def _live_refused(request, conversation: Conversation) -> JsonResponse | None:
    """429 (with Retry-After) when this visitor, or their address, opens live streams too often."""
    verdicts = [
        ratelimit.hit(f"live:conversation:{conversation.pk}", limit=LIVE_OPENS_PER_VISITOR, window=60),
        ratelimit.hit(f"live:address:{client_address(request)}", limit=LIVE_OPENS_PER_ADDRESS, window=60),
    ]
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if not refused:
        return None
    retry_after = max(verdict.retry_after for verdict in refused)
    response = JsonResponse({"error": "rate_limited", "retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def event_stream(body) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


@require_GET
def conversation_return(request, slug: str, token: str):
    """The signed link in the email to a visitor who left: it opens that conversation on the
    assistant's full page, for this browser (the visitor cookie becomes the conversation's), or says
    plainly that the link expired or is not valid. An internal assistant still asks for its code."""
    from assistants.handoff.emails import ReturnLinkError, return_link_conversation

    assistant = get_object_or_404(Assistant, slug=slug)
    try:
        conversation_id = return_link_conversation(token)
        conversation = Conversation.objects.filter(pk=conversation_id, assistant=assistant).first()
        if conversation is None:
            raise ReturnLinkError("invalid")
    except ReturnLinkError as exc:
        context = {
            "assistant": assistant,
            "brand": assistant_selectors.assistant_branding(assistant=assistant),
            "expired": exc.kind == "expired",
            "page": reverse("assistant_page", args=[assistant.slug]),
        }
        response = render(request, "chat/link_invalid.html", context, status=410 if exc.kind == "expired" else 400)
        response["Cache-Control"] = "no-store"
        return response
    response = redirect(reverse("assistant_page", args=[assistant.slug]) + f"?conversation={conversation.pk}")
    visitors.set_visitor_cookie(response, conversation.visitor_token)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
