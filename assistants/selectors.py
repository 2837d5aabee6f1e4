"""Reads for teams and assistants. Every dashboard read goes through the user's teams."""
from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404

from assistants.models import Assistant, Conversation, Membership, Team


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


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_related("assistant")
        .filter(pk=conversation_id, assistant__team__memberships__user=user)
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


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
