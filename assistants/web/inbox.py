"""The team's live inbox: conversations waiting for a person or with one, the thread of the one
opened, and the actions on it (assign to me, reply, resolve); a stream keeps the page live.

Reading is every member's (READ); taking, replying and resolving is work (WORK, see
``assistants.access``). Writes go through ``assistants.handoff.services``; the page's script
(``static/js/inbox.js``) reads the team's stream (``inbox_stream``) and posts replies with the CSRF
token, and without script every action is a plain form.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assistants import access
from assistants import services as team_services
from assistants.forms import SETTINGS_SECTIONS
from assistants.handoff import live, selectors
from assistants.handoff import services as handoff_services
from assistants.handoff.forms import HandoffSettingsForm
from assistants.models import Conversation, Membership
from assistants.web.handoff import event_stream
from chatsite.db import release_connection


def _inbox_url(team_id: int, conversation_id: int | None = None) -> str:
    url = reverse("team_inbox", args=[team_id])
    return f"{url}?c={conversation_id}" if conversation_id else url


def _duty_back(request, team_id: int) -> str:
    """Where an on-duty change returns: the members page or the inbox (never a URL from the form)."""
    if request.POST.get("back") == "members":
        return reverse("team_members", args=[team_id])
    return reverse("team_inbox", args=[team_id])


def _on_duty_flag(request) -> bool:
    return request.POST.get("on_duty", "") in ("1", "true", "on")


@login_required
@require_POST
def team_on_duty(request, team_id: int):
    """I go on duty (``on_duty=1``: the handoff emails come to me) or off duty (``on_duty=0``)."""
    team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.WORK)
    membership = Membership.objects.get(team=team, user=request.user)
    team_services.membership_on_duty_set(membership=membership, on_duty=_on_duty_flag(request))
    messages.success(
        request,
        "You are on duty: visitors asking for a person are emailed to you."
        if membership.on_duty
        else "You are off duty.",
    )
    return redirect(_duty_back(request, team.pk))


@login_required
@require_POST
def membership_on_duty(request, membership_id: int):
    """An owner or admin puts a member on duty, or takes them off."""
    membership = access.membership_duty_for(user=request.user, membership_id=membership_id)
    team_services.membership_on_duty_set(membership=membership, on_duty=_on_duty_flag(request))
    name = membership.user.first_name or membership.user.username
    messages.success(request, f"{name} is {'on' if membership.on_duty else 'off'} duty.")
    return redirect(_duty_back(request, membership.team_id))


@login_required
@require_GET
def team_inbox(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id)
    cursor = selectors.cursor_for_team(team_id=team.pk)  # before the list: the stream repeats, never skips
    cards = selectors.conversation_cards(conversations=selectors.inbox_conversations(team=team))
    selected = None
    chosen = request.GET.get("c", "")
    if chosen.isdigit():
        selected = Conversation.objects.filter(pk=int(chosen), assistant__team=team).select_related("assistant").first()
    if selected is None and cards:
        selected = Conversation.objects.select_related("assistant").get(pk=cards[0]["id"])
    context = {
        "team": team,
        "cards": cards,
        "cursor": str(cursor),
        "selected": selected,
        "selected_card": selectors.conversation_card(conversation=selected) if selected else None,
        "thread": selectors.inbox_messages(conversation=selected) if selected else [],
        "can_work": access.Permission.WORK in team.viewer_can,
        "me": request.user.pk,
        "active": selected is not None and selected.handoff_state in selectors.ACTIVE,
    }
    on_duty = selectors.on_duty_memberships(team=team)
    context["on_duty"] = [name for _, name in on_duty]
    context["me_on_duty"] = any(user_id == request.user.pk for user_id, _ in on_duty)
    return render(request, "dashboard/inbox.html", context)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _act(request, conversation_id: int, action):
    conversation = access.conversation_for(user=request.user, conversation_id=conversation_id, write=True)
    try:
        result = action(conversation)
    except handoff_services.HandoffError as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc), "state": conversation.handoff_state}, status=409)
        messages.error(request, str(exc))
        return redirect(_inbox_url(conversation.assistant.team_id, conversation.pk))
    if _wants_json(request):
        return JsonResponse({"state": conversation.handoff_state, **(result or {})})
    return redirect(_inbox_url(conversation.assistant.team_id, conversation.pk))


@login_required
@require_POST
def handoff_assign(request, conversation_id: int):
    """Assign to me: the member takes the conversation (from the queue, or from a colleague)."""
    return _act(
        request,
        conversation_id,
        lambda conversation: handoff_services.handoff_assign(conversation=conversation, user=request.user) and None,
    )


@login_required
@require_POST
def handoff_reply(request, conversation_id: int):
    """The member's reply (``text``), shown to the visitor at once; replying to a waiting one takes it."""

    def reply(conversation):
        message = handoff_services.agent_reply(
            conversation=conversation, user=request.user, text=request.POST.get("text", "")
        )
        return {"message_id": message.pk}

    return _act(request, conversation_id, reply)


@login_required
@require_POST
def handoff_take_over(request, conversation_id: int):
    """Take over: the member takes a conversation the assistant answers (``why``: a short note kept
    with it); the assistant stops answering and the inbox opens it."""
    return _act(
        request,
        conversation_id,
        lambda conversation: (
            handoff_services.handoff_take_over(
                conversation=conversation, user=request.user, why=request.POST.get("why", "")
            )
            and None
        ),
    )


@login_required
@require_POST
def handoff_typing(request, conversation_id: int):
    """The member types a reply (sent by the inbox at most every few seconds): the visitor sees
    "Dana from Acme is typing…". Nothing is stored; 204."""
    conversation = access.conversation_for(user=request.user, conversation_id=conversation_id, write=True)
    if conversation.handoff_state in selectors.ACTIVE:
        live.typing_agent(
            conversation_id=conversation.pk, label=selectors.agent_label(request.user, conversation.assistant.team)
        )
    return HttpResponse(status=204)


@login_required
@require_POST
def handoff_resolve(request, conversation_id: int):
    """Resolve: the visitor's next message goes to the assistant again."""
    return _act(
        request,
        conversation_id,
        lambda conversation: handoff_services.handoff_resolve(conversation=conversation, user=request.user) and None,
    )


@require_GET
async def inbox_stream(request, team_id: int):
    """The team's live inbox as Server-Sent Events: ``message`` (a visitor's or a member's, in a
    conversation with the team) and ``handoff`` (a change, with the conversation's card)."""
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "sign in"}, status=401)

    def load():
        try:
            team = access.team_for(user=user, team_id=team_id)
            return team, live.start_cursor(request) or selectors.cursor_for_team(team_id=team.pk)
        finally:
            release_connection()

    try:
        team, cursor = await sync_to_async(load)()
    except Http404:
        return JsonResponse({"error": "no such team"}, status=404)
    except PermissionDenied:
        return JsonResponse({"error": "not allowed"}, status=403)
    body = live.stream(
        channel=live.team_channel(team.pk),
        cursor=cursor,
        read_after=lambda after: selectors.inbox_items_after(team=team, cursor=after),
    )
    return event_stream(body)


@login_required
def handoff_settings(request, assistant_id: int):
    """An assistant's handoff settings: every role reads them, owners and admins change them."""
    write = request.method == "POST"
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=write)
    current = selectors.handoff_settings(assistant=assistant)
    form = HandoffSettingsForm.for_settings(current, request.POST if write else None)
    if write and form.is_valid():
        handoff_services.handoff_settings_update(assistant=assistant, **form.settings_fields())
        messages.success(request, "Handoff settings saved.")
        return redirect("handoff_settings", assistant_id=assistant.pk)
    return render(
        request,
        "dashboard/handoff_settings.html",
        {
            "assistant": assistant,
            "team": assistant.team,
            "form": form,
            "sections": [(key, value[0]) for key, value in SETTINGS_SECTIONS.items()],
            "can_manage": access.Permission.MANAGE in assistant.viewer_can,
        },
        status=400 if write else 200,
    )
