"""Who may do what in a team: the role matrix, defined once, and one access helper per kind of object.

* owner: everything, including the team's settings, its members and their roles;
* admin: assistants, their content, API keys and custom domains — and what a member may do;
* member: reads everything of the team and works its conversations;
* anyone else: the object does not exist (404), whatever its id.

A helper returns the object when the user's role allows the access asked for (``write=False``:
reading; ``write=True``: the permission that changing that kind of object needs), answers 404 to a
user outside the team (the same answer as for an id that does not exist) and 403 to a member whose
role does not allow it. The object carries ``viewer_can``, the user's permissions in its team, so that
a page shows only the buttons its viewer may use.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import F, Model, QuerySet
from django.http import Http404

from assistants.models import (
    Assistant,
    ContentGap,
    Conversation,
    CustomDomain,
    GoldenQuestion,
    Invitation,
    Lead,
    Membership,
    Team,
    WebhookDelivery,
    WebhookEndpoint,
)
from ingestion.models import Document, Source

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Permission(StrEnum):
    READ = "read"  # see every page of the team
    WORK = "work"  # work conversations: reply, assign, resolve, fix an answer
    MANAGE = "manage"  # assistants, content, API keys, custom domains
    OWN = "own"  # the team's settings, members and roles


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Membership.Role.OWNER: frozenset(Permission),
    Membership.Role.ADMIN: frozenset({Permission.READ, Permission.WORK, Permission.MANAGE}),
    Membership.Role.MEMBER: frozenset({Permission.READ, Permission.WORK}),
}

ROLE_HELP = {
    Membership.Role.OWNER: "Everything, including the team's settings, members and roles.",
    Membership.Role.ADMIN: "Assistants, content, API keys and domains; conversations.",
    Membership.Role.MEMBER: "Reads everything; works conversations.",
}


def permissions(role: str | None) -> frozenset[Permission]:
    return ROLE_PERMISSIONS.get(role or "", frozenset())


def _checked(queryset: QuerySet, *, user: User, pk, team_path: str, need: Permission, what: str) -> Model:
    """The row of ``queryset`` with ``pk`` whose team (reached by ``team_path``) has the user as a
    member allowed ``need``; Http404 outside the team, PermissionDenied inside it without the right."""
    if not getattr(user, "is_authenticated", False) or not str(pk).isdigit():
        raise Http404(f"No such {what}")
    prefix = f"{team_path}__" if team_path else ""
    row = (
        queryset.filter(pk=pk, **{f"{prefix}memberships__user": user})
        .annotate(viewer_role=F(f"{prefix}memberships__role"))
        .first()
    )
    if row is None:
        raise Http404(f"No such {what}")
    row.viewer_can = permissions(row.viewer_role)
    if need not in row.viewer_can:
        raise PermissionDenied(f"Your role ({row.viewer_role}) cannot change this {what}.")
    return row


def team_for(*, user: User, team_id, need: Permission = Permission.READ) -> Team:
    """The team; ``need`` names the permission (OWN for its settings and members, MANAGE for its keys)."""
    return _checked(Team.objects.all(), user=user, pk=team_id, team_path="", need=need, what="team")


def assistant_for(*, user: User, assistant_id, write: bool = False) -> Assistant:
    return _checked(
        Assistant.objects.select_related("team"),
        user=user,
        pk=assistant_id,
        team_path="team",
        need=Permission.MANAGE if write else Permission.READ,
        what="assistant",
    )


def source_for(*, user: User, source_id, write: bool = False) -> Source:
    return _checked(
        Source.objects.select_related("assistant", "assistant__team", "last_run"),
        user=user,
        pk=source_id,
        team_path="assistant__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="source",
    )


def document_for(*, user: User, document_id, write: bool = False) -> Document:
    return _checked(
        Document.objects.select_related("source", "source__assistant"),
        user=user,
        pk=document_id,
        team_path="source__assistant__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="document",
    )


def conversation_for(*, user: User, conversation_id, write: bool = False) -> Conversation:
    """Writing to a conversation (replying, assigning, resolving) is every member's work."""
    return _checked(
        Conversation.objects.select_related("assistant", "assistant__team"),
        user=user,
        pk=conversation_id,
        team_path="assistant__team",
        need=Permission.WORK if write else Permission.READ,
        what="conversation",
    )


def domain_for(*, user: User, domain_id, write: bool = False) -> CustomDomain:
    return _checked(
        CustomDomain.objects.select_related("assistant"),
        user=user,
        pk=domain_id,
        team_path="assistant__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="domain",
    )


def golden_question_for(*, user: User, golden_id, write: bool = False) -> GoldenQuestion:
    return _checked(
        GoldenQuestion.objects.select_related("assistant"),
        user=user,
        pk=golden_id,
        team_path="assistant__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="question",
    )


def membership_for(*, user: User, membership_id, write: bool = False) -> Membership:
    """A membership of the team; changing its role or removing it is the owners' (OWN)."""
    return _checked(
        Membership.objects.select_related("team", "user"),
        user=user,
        pk=membership_id,
        team_path="team",
        need=Permission.OWN if write else Permission.READ,
        what="member",
    )


def membership_duty_for(*, user: User, membership_id) -> Membership:
    """A member of the team whose duty (the handoff emails) an owner or admin sets (MANAGE); members
    set their own through the team (``team_for`` with WORK)."""
    return _checked(
        Membership.objects.select_related("team", "user"),
        user=user,
        pk=membership_id,
        team_path="team",
        need=Permission.MANAGE,
        what="member",
    )


def invitation_for(*, user: User, invitation_id, write: bool = False) -> Invitation:
    """An invitation to the team; inviting and revoking are the owners' (OWN)."""
    return _checked(
        Invitation.objects.select_related("team"),
        user=user,
        pk=invitation_id,
        team_path="team",
        need=Permission.OWN if write else Permission.READ,
        what="invitation",
    )


# Leads and webhooks


def lead_for(*, user: User, lead_id, write: bool = False) -> Lead:
    """A lead of the team; changing its status and notes is every member's work (WORK)."""
    return _checked(
        Lead.objects.select_related("assistant", "team", "conversation"),
        user=user,
        pk=lead_id,
        team_path="team",
        need=Permission.WORK if write else Permission.READ,
        what="lead",
    )


def webhook_endpoint_for(*, user: User, endpoint_id, write: bool = False) -> WebhookEndpoint:
    """A webhook endpoint of the team; changing it (and seeing its secret) is the admins' (MANAGE)."""
    return _checked(
        WebhookEndpoint.objects.select_related("team"),
        user=user,
        pk=endpoint_id,
        team_path="team",
        need=Permission.MANAGE if write else Permission.READ,
        what="webhook endpoint",
    )


def webhook_delivery_for(*, user: User, delivery_id, write: bool = False) -> WebhookDelivery:
    return _checked(
        WebhookDelivery.objects.select_related("endpoint", "endpoint__team"),
        user=user,
        pk=delivery_id,
        team_path="endpoint__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="webhook delivery",
    )


def gap_for(*, user: User, gap_id, write: bool = False) -> ContentGap:
    """A content gap of one of the team's assistants; adding content for it or re-checking it is MANAGE."""
    return _checked(
        ContentGap.objects.select_related("assistant", "assistant__team"),
        user=user,
        pk=gap_id,
        team_path="assistant__team",
        need=Permission.MANAGE if write else Permission.READ,
        what="gap",
    )
