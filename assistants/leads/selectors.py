"""Reads of leads: the team's list (best first, filtered), one lead's payload (API and webhooks), and
the CSV export."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from assistants.models import Lead, Team
from chatsite.lib.csv_export import csv_lines

EXPORT_COLUMNS = [
    "id",
    "created_at",
    "assistant",
    "status",
    "score",
    "name",
    "email",
    "phone",
    "company",
    "custom",
    "consent_text",
    "consent_at",
    "intent",
    "trigger",
    "page_url",
    "notes",
    "conversation_id",
]


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def leads_for_team(
    *,
    team: Team | int,
    status: str = "",
    assistant_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
    min_score: int | None = None,
    max_score: int | None = None,
) -> QuerySet[Lead]:
    """The team's leads, best first (highest score, then newest), with the filters given."""
    team_id = team if isinstance(team, int) else team.pk
    leads = Lead.objects.filter(team_id=team_id).select_related("assistant")
    if status:
        leads = leads.filter(status=status)
    if assistant_id:
        leads = leads.filter(assistant_id=assistant_id)
    if since:
        leads = leads.filter(created_at__gte=_day_start(since))
    if until:
        leads = leads.filter(created_at__lt=_day_start(until) + timezone.timedelta(days=1))
    if min_score is not None:
        leads = leads.filter(score__gte=min_score)
    if max_score is not None:
        leads = leads.filter(score__lte=max_score)
    return leads.order_by("-score", "-created_at", "-id")


SCORE_PART_LABELS = {
    "intent": "Intent",
    "engagement": "Engagement",
    "completeness": "Contact details",
    "answered": "Answered",
}


def score_parts_shown(lead: Lead) -> list[dict]:
    """The parts of the lead's score as the pages and emails show them: ``label``, ``points``, ``max``,
    ``why``, in the order of the docs (JSONB keeps its own key order)."""
    stored = lead.score_parts or {}
    return [{"label": label, **stored[key]} for key, label in SCORE_PART_LABELS.items() if key in stored]


def lead_of_conversation(*, conversation) -> Lead | None:
    return Lead.objects.filter(conversation=conversation).first()


def lead_payload(lead: Lead) -> dict:
    """A lead as the API and the ``lead.created`` webhook give it (plain JSON values)."""
    return {
        "id": lead.pk,
        "assistant_id": lead.assistant_id,
        "conversation_id": lead.conversation_id,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "custom": lead.custom,
        "consent": {"text": lead.consent_text, "at": lead.consent_at.isoformat() if lead.consent_at else None},
        "page_url": lead.page_url,
        "trigger": lead.trigger,
        "intent": lead.intent,
        "status": lead.status,
        "notes": lead.notes,
        "score": lead.score,
        "score_parts": lead.score_parts,
        "created_at": lead.created_at.isoformat() if lead.created_at else None,
    }


def lead_export_csv(leads: Iterable[Lead]) -> Iterator[str]:
    return csv_lines(EXPORT_COLUMNS, (_export_row(lead) for lead in leads))


def _export_row(lead: Lead) -> list:
    custom = "; ".join(f"{key}: {value}" for key, value in (lead.custom or {}).items())
    return [
        lead.pk,
        lead.created_at.isoformat(),
        lead.assistant.name,
        lead.status,
        lead.score,
        lead.name,
        lead.email,
        lead.phone,
        lead.company,
        custom,
        lead.consent_text,
        lead.consent_at.isoformat() if lead.consent_at else "",
        lead.intent,
        lead.trigger,
        lead.page_url,
        lead.notes,
        lead.conversation_id or "",
    ]
