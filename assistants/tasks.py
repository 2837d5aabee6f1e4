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


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, time_limit=120, soft_time_limit=100
)
def webhook_deliver_task(self, delivery_id: int) -> str:
    """Post one webhook delivery if it is due (claimed first: a second copy of the task does nothing).
    Redelivered after its worker died mid-send, it takes over its own lease at once (``delivery_attempt``)."""
    from assistants.webhooks import services as webhook_services

    return webhook_services.delivery_attempt(
        delivery_id=delivery_id, holder=self.request.id or "", redelivered=_redelivered(self)
    )


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, time_limit=120, soft_time_limit=100)
def webhook_deliveries_due_task() -> int:
    """Queue the deliveries whose next try is due, and disable the endpoints failing for days even
    without new traffic (beat, every minute)."""
    from assistants.webhooks import services as webhook_services

    webhook_services.endpoints_failing_sweep()
    return webhook_services.deliveries_due()


CLAIM_SECONDS = 600  # longer than an email task may run (its hard time limit is 120 s)


def _redelivered(task) -> bool:
    """Whether this delivery of ``task`` is a redelivery: the worker that had it died (acks_late with
    reject_on_worker_lost, and a visibility timeout longer than any task: that one is not running)."""
    return bool((getattr(task.request, "delivery_info", None) or {}).get("redelivered"))


def _send_once(task, model, pk: int, field: str, send) -> None:
    """``send()`` the email that ``field`` of the row records, once: not when the field is set (sent),
    not while another delivery of the task sends it (a claim in Redis), except by a redelivery, which
    takes over the claim of a worker that died mid-send — so a killed worker loses no email. The field
    is set after the send; a worker killed between the two sends it twice (at least once, never lost)."""
    from django.utils import timezone

    from chatsite.lib.shared_redis import redis_client

    if model.objects.filter(pk=pk, **{f"{field}__isnull": False}).exists():
        return
    claim = f"claimed:{model._meta.label_lower}:{pk}:{field}"
    if not redis_client().set(claim, "1", nx=True, ex=CLAIM_SECONDS) and not _redelivered(task):
        return
    try:
        if send() is not False:
            model.objects.filter(pk=pk, **{f"{field}__isnull": True}).update(**{field: timezone.now()})
    finally:
        redis_client().delete(claim)


# An email task: retried when the mail server (OSError) or the database cannot be reached, a short limit.
EMAIL_TASK = {
    "bind": True,
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
def lead_notify_task(self, lead_id: int) -> None:
    """Email the team's admins about a new lead, once (``Lead.notified_at``)."""
    from assistants.models import Lead
    from assistants.notifications import emails

    def send():
        lead = Lead.objects.select_related("assistant").filter(pk=lead_id).first()
        return lead is not None and emails.lead_created(lead)

    _send_once(self, Lead, lead_id, "notified_at", send)


@shared_task(**EMAIL_TASK)
def webhook_endpoint_disabled_notify_task(self, endpoint_id: int) -> None:
    """Email the team's admins that one of their webhook endpoints was disabled, once
    (``WebhookEndpoint.disabled_notified_at``, cleared when it is enabled again)."""
    from assistants.models import WebhookEndpoint
    from assistants.notifications import emails

    def send():
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        return endpoint is not None and emails.endpoint_disabled(endpoint)

    _send_once(self, WebhookEndpoint, endpoint_id, "disabled_notified_at", send)


HANDOFF_NOTICE_SECONDS = 600  # one email per conversation in this window, however often the task runs


@shared_task(**EMAIL_TASK)
def notify_handoff_requested(self, conversation_id: int) -> None:
    """Email the team's members on duty (else its owners and admins) that a visitor of this conversation waits for a person.
    Reads the handoff's reason and summary where the conversation has them; a second call within
    HANDOFF_NOTICE_SECONDS (a double click, a second copy of the task) sends nothing, except a
    redelivery that finds the first send unfinished (its worker died mid-send: see ``_send_once``)."""
    from assistants.models import Conversation
    from assistants.notifications import emails
    from chatsite.lib.shared_redis import redis_client

    conversation = Conversation.objects.select_related("assistant__team").filter(pk=conversation_id).first()
    if conversation is None:
        return
    key = f"notified:handoff:{conversation_id}"
    redis = redis_client()
    if not redis.set(key, "sending", nx=True, ex=HANDOFF_NOTICE_SECONDS):
        if not (_redelivered(self) and redis.get(key) in (b"sending", "sending")):
            return
    try:
        emails.handoff_requested(conversation)
    except Exception:
        redis.delete(key)
        raise
    redis.set(key, "sent", xx=True, keepttl=True)


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
