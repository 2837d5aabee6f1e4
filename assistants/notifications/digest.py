"""The daily digest: for each member who asked for it, yesterday's activity of their team — new
leads (the best first), conversations, questions the content could not answer, contact requests."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from assistants.models import Conversation, Feedback, Lead, MemberNotifications, Membership, Message
from assistants.notifications import emails

TOP_LEADS = 5


def member_digest_set(*, membership: Membership, daily_digest: bool) -> MemberNotifications:
    choice, _ = MemberNotifications.objects.update_or_create(
        membership=membership, defaults={"daily_digest": daily_digest}
    )
    return choice


def member_digest_on(*, membership: Membership) -> bool:
    return MemberNotifications.objects.filter(membership=membership, daily_digest=True).exists()


def team_day(team_id: int, since, until) -> dict:
    """What happened in the team between ``since`` and ``until``."""
    conversations = Conversation.objects.filter(assistant__team_id=team_id, created_at__gte=since, created_at__lt=until)
    leads = Lead.objects.filter(team_id=team_id, created_at__gte=since, created_at__lt=until).select_related(
        "assistant"
    )
    messages = Message.objects.filter(
        conversation__assistant__team_id=team_id, created_at__gte=since, created_at__lt=until
    )
    counts = messages.aggregate(
        questions=Count("id", filter=Q(role="user")),
        unanswered=Count("id", filter=Q(role="assistant", unanswered=True)),
    )
    return {
        "conversations": conversations.count(),
        "questions": counts["questions"],
        "unanswered": counts["unanswered"],
        "contacts": Feedback.objects.filter(
            conversation__assistant__team_id=team_id, kind="contact", created_at__gte=since, created_at__lt=until
        ).count(),
        "lead_count": leads.count(),
        "leads": list(leads.order_by("-score", "-created_at")[:TOP_LEADS]),
    }


def daily_digests_send(now=None) -> int:
    """Send today's digest to every member who asked for it and has not had it today (claimed first,
    so a second run, or a second worker, sends nothing). Returns how many were sent."""
    now = now or timezone.now()
    today = now.date()
    since, until = now - timedelta(days=1), now
    sent = 0
    due = MemberNotifications.objects.filter(daily_digest=True).exclude(digest_sent_on=today)
    for choice in due.select_related("membership__team", "membership__user"):
        claimed = (
            MemberNotifications.objects.filter(pk=choice.pk).exclude(digest_sent_on=today).update(digest_sent_on=today)
        )
        user = choice.membership.user
        if not claimed or not user.email or not user.is_active:
            continue
        team = choice.membership.team
        context = {
            "team": team,
            "day": team_day(team.pk, since, until),
            "leads_link": emails.link(reverse("team_leads", args=[team.pk])),
            "conversations_link": emails.link(reverse("team_conversations", args=[team.pk])),
        }
        try:
            sent += emails.send(
                template="daily_digest",
                subject=f"Your day on Chatsite · {emails.one_line(team.name, 60)}",
                to=[user.email],
                context=context,
            )
        except Exception:
            MemberNotifications.objects.filter(pk=choice.pk).update(digest_sent_on=choice.digest_sent_on)
            raise
    return sent
