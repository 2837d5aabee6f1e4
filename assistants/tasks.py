"""Celery tasks of the assistants app: they take ids and call the services."""

from __future__ import annotations

from celery import shared_task

from assistants.golden import services as golden_services
from chatsite.celery import DATABASE_UNREACHABLE


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def golden_run_task(run_id: int) -> None:
    """Evaluate an assistant's retrieval on its golden set (reads only: safe to run again)."""
    golden_services.golden_run_execute(run_id=run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def assistant_calibrate_task(assistant_id: int) -> None:
    """Learn the assistant's "I don't know" gate from its content and golden set (safe to run again)."""
    golden_services.assistant_calibrate(assistant_id=assistant_id)


# --- Leads, notifications and webhooks ---------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, time_limit=120, soft_time_limit=100)
def webhook_deliver_task(delivery_id: int) -> str:
    """Post one webhook delivery if it is due (claimed first: a second copy of the task does nothing)."""
    from assistants.webhooks import services as webhook_services

    return webhook_services.delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, time_limit=120, soft_time_limit=100)
def webhook_deliveries_due_task() -> int:
    """Queue the deliveries whose next try is due, and disable the endpoints failing for days even
    without new traffic (beat, every minute)."""
    from assistants.webhooks import services as webhook_services

    webhook_services.endpoints_failing_sweep()
    return webhook_services.deliveries_due()


def _claimed(model, pk: int, field: str) -> bool:
    """Mark ``field`` of the row as now if it was empty: True for the one caller that marked it."""
    from django.utils import timezone

    return bool(model.objects.filter(pk=pk, **{f"{field}__isnull": True}).update(**{field: timezone.now()}))


def _unclaim(model, pk: int, field: str) -> None:
    model.objects.filter(pk=pk).update(**{field: None})


# An email task: retried when the mail server (OSError) or the database cannot be reached, a short limit.
EMAIL_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (OSError, *DATABASE_UNREACHABLE),
    "retry_backoff": 30,
    "retry_kwargs": {"max_retries": 5},
    "time_limit": 120,
    "soft_time_limit": 100,
}


@shared_task(**EMAIL_TASK)
def lead_notify_task(lead_id: int) -> None:
    """Email the team's admins about a new lead, once."""
    from assistants.models import Lead
    from assistants.notifications import emails

    if not _claimed(Lead, lead_id, "notified_at"):
        return
    lead = Lead.objects.select_related("assistant").filter(pk=lead_id).first()
    if lead is None:
        return
    try:
        emails.lead_created(lead)
    except Exception:
        _unclaim(Lead, lead_id, "notified_at")
        raise


@shared_task(**EMAIL_TASK)
def webhook_endpoint_disabled_notify_task(endpoint_id: int) -> None:
    """Email the team's admins that one of their webhook endpoints was disabled, once."""
    from assistants.models import WebhookEndpoint
    from assistants.notifications import emails

    if not _claimed(WebhookEndpoint, endpoint_id, "disabled_notified_at"):
        return
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    try:
        emails.endpoint_disabled(endpoint)
    except Exception:
        _unclaim(WebhookEndpoint, endpoint_id, "disabled_notified_at")
        raise


HANDOFF_NOTICE_SECONDS = 600  # one email per conversation in this window, however often the task runs


@shared_task(**EMAIL_TASK)
def notify_handoff_requested(conversation_id: int) -> None:
    """Email the team's members on duty (else its owners and admins) that a visitor of this conversation waits for a person.
    Reads the handoff's reason and summary where the conversation has them; a second call within
    HANDOFF_NOTICE_SECONDS (a redelivered task, a double click) sends nothing."""
    from assistants.models import Conversation
    from assistants.notifications import emails
    from chatsite.lib.shared_redis import redis_client

    conversation = Conversation.objects.select_related("assistant__team").filter(pk=conversation_id).first()
    if conversation is None:
        return
    key = f"notified:handoff:{conversation_id}"
    if not redis_client().set(key, "1", nx=True, ex=HANDOFF_NOTICE_SECONDS):
        return
    try:
        emails.handoff_requested(conversation)
    except Exception:
        redis_client().delete(key)
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, time_limit=600, soft_time_limit=540)
def daily_digests_task() -> int:
    """Send the day's digest to each member who asked for it (beat, hourly; once a day each)."""
    from assistants.notifications.digest import daily_digests_send

    return daily_digests_send()


# The analytics tasks live in their package; importing them here registers them with the worker.
from assistants.analytics.tasks import (  # noqa: E402, F401
    gap_recheck_task,
    question_embed_task,
    rollups_compute_task,
    rollups_refresh_task,
    topics_build_task,
    topics_rebuild_due_task,
)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=90, time_limit=120)
def handoff_summarize_task(handoff_id: int) -> None:
    """Write a handoff's summary with the assistant's model (the extractive one stays if it fails;
    running again writes it again)."""
    from assistants.handoff import summary

    summary.handoff_summarize(handoff_id=handoff_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def handoff_visitor_email_task(conversation_id: int) -> None:
    """Email a visitor who left the team's replies they have not seen (nothing when there are none)."""
    from assistants.handoff import emails

    emails.visitor_replies_send(conversation_id=conversation_id)
