"""Render and send the team's notification emails (called by the tasks in assistants/tasks.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from assistants.models import Conversation, Lead, Membership, Team, WebhookEndpoint


def one_line(text: str, limit: int = 120) -> str:
    """Text fit for a subject line: no line breaks (no header injection), at most ``limit`` characters."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def team_admin_emails(team: Team | int) -> list[str]:
    """The addresses of the team's owners and admins."""
    team_id = team if isinstance(team, int) else team.pk
    rows = Membership.objects.filter(
        team_id=team_id, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True
    ).exclude(user__email="")
    return sorted({row.user.email for row in rows.select_related("user")})


def handoff_recipient_emails(team: Team | int) -> list[str]:
    """Who hears that a visitor waits for a person: the team's members on duty, or every owner and
    admin when nobody is (nobody on duty with an email address counts as nobody)."""
    team_id = team if isinstance(team, int) else team.pk
    rows = Membership.objects.filter(team_id=team_id, on_duty=True, user__is_active=True).exclude(user__email="")
    on_duty = sorted({row.user.email for row in rows.select_related("user")})
    return on_duty or team_admin_emails(team_id)


def link(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def send(*, template: str, subject: str, to: list[str], context: dict) -> int:
    """Send ``emails/<template>.txt`` with ``emails/<template>.html`` beside it to each of ``to``
    (one message, the addresses in Bcc so that admins do not see each other's). Returns how many were sent."""
    if not to:
        return 0
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(one_line(subject, 150), text, None, [], bcc=to)
    message.attach_alternative(html, "text/html")
    return message.send()


def lead_created(lead: Lead) -> int:
    who = one_line(lead.name or lead.email or lead.phone or "A visitor", 60)
    return send(
        template="lead_created",
        subject=f"New lead: {who} ({lead.score}/100) · {one_line(lead.assistant.name, 60)}",
        to=team_admin_emails(lead.team_id),
        context={"lead": lead, "link": link(reverse("lead_detail", args=[lead.pk])), "parts": _parts(lead)},
    )


def _parts(lead: Lead) -> list[dict]:
    from assistants.leads.selectors import score_parts_shown

    return score_parts_shown(lead)


def endpoint_disabled(endpoint: WebhookEndpoint) -> int:
    return send(
        template="webhook_disabled",
        subject=f"Webhook endpoint disabled: {one_line(endpoint.url, 80)}",
        to=team_admin_emails(endpoint.team_id),
        context={"endpoint": endpoint, "link": link(reverse("webhook_detail", args=[endpoint.pk]))},
    )


def handoff_requested(conversation: Conversation) -> int:
    """To the team's members on duty (else its owners and admins): a visitor waits for a person, with the handoff's reason and summary (the
    latest handoff of the conversation) and the visitor's contact details where they left them."""
    team = conversation.assistant.team
    contact = {}
    request = conversation.feedback.filter(kind="contact").order_by("-created_at").first()
    if request is not None:
        contact = {key: str(request.details.get(key) or "") for key in ("name", "email", "message")}
    lead = Lead.objects.filter(conversation=conversation).first()
    if lead is not None:
        contact = {
            "name": lead.name or contact.get("name", ""),
            "email": lead.email or contact.get("email", ""),
            "phone": lead.phone,
            "message": contact.get("message", ""),
        }
    last_question = conversation.messages.filter(role="user").order_by("-created_at", "-id").first()
    handoff = conversation.handoffs.order_by("-requested_at", "-id").first()
    context = {
        "conversation": conversation,
        "assistant": conversation.assistant,
        "reason": handoff.get_reason_display() + (f" ({handoff.trigger})" if handoff.trigger else "")
        if handoff
        else "",
        "summary": handoff.summary if handoff else "",
        "contact": contact,
        "last_question": last_question.text if last_question else "",
        "link": link(reverse("conversation_detail", args=[conversation.pk])),
    }
    return send(
        template="handoff_requested",
        subject=f"A visitor asks for a person · {one_line(conversation.assistant.name, 60)}",
        to=handoff_recipient_emails(team),
        context=context,
    )
