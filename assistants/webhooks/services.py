"""Writes of webhooks: endpoints and their secrets, ``emit`` (the one place events leave), deliveries
and their attempts. The delivery task (assistants/tasks.py) calls :func:`delivery_attempt`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assistants.models import Team, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from assistants.webhooks import signing
from chatsite.lib import http
from chatsite.lib.shared_redis import redis_client

EVENTS = [value for value, _ in WebhookEndpoint.Event.choices]
# A retry whose wait is at most this is queued with a countdown; a longer one is queued by the sweep
# (webhook_deliveries_due_task, every minute), since Redis redelivers a task held past its visibility timeout.
COUNTDOWN_MAX = 900
EXCERPT_BYTES = 500  # of a receiver's reply, kept in the log


class WebhookError(ValueError):
    pass


def endpoint_url_check(url: str) -> None:
    """Raise WebhookError with a reason for a URL the product will not call (private, loopback, …)."""
    try:
        http.check_destination(url)
    except http.OutboundRefused as exc:
        raise WebhookError(f"This address cannot receive webhooks: {exc.reason}.") from None


def endpoint_create(*, team: Team, url: str, events: list[str], description: str = "") -> WebhookEndpoint:
    endpoint_url_check(url)
    return WebhookEndpoint.objects.create(
        team=team,
        url=url,
        events=[event for event in EVENTS if event in events],
        description=description,
        secret=signing.secret_new(),
    )


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, events: list[str], description: str, enabled: bool
) -> WebhookEndpoint:
    endpoint_url_check(url)
    endpoint.url = url
    endpoint.events = [event for event in EVENTS if event in events]
    endpoint.description = description
    if enabled and not endpoint.enabled:  # enabled again: its failures start over
        endpoint.failing_since = endpoint.disabled_at = endpoint.disabled_notified_at = None
        endpoint.disabled_reason = ""
    endpoint.enabled = enabled
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE_HOURS."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    endpoint.secret = signing.secret_new()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def secrets_in_use(endpoint: WebhookEndpoint, now=None) -> list[str]:
    now = now or timezone.now()
    keep_old = (
        endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now
    )
    return [endpoint.secret, endpoint.previous_secret] if keep_old else [endpoint.secret]


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    from assistants.tasks import webhook_deliver_task

    transaction.on_commit(lambda: webhook_deliver_task.apply_async((delivery_id,), countdown=countdown))


def emit(*, team: Team | int, event_type: str, data: dict) -> list[WebhookDelivery]:
    """Send ``event_type`` with ``data`` to every enabled endpoint of the team that asked for it: one
    delivery each, posted by a worker after the transaction commits. The single place events leave."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    team_id = team if isinstance(team, int) else team.pk
    endpoints = WebhookEndpoint.objects.filter(team_id=team_id, enabled=True, events__contains=[event_type])
    now = timezone.now()
    payload = {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=signing.message_id_new(),
            event_type=event_type,
            payload=payload,
            next_attempt_at=now,
        )
        _enqueue(delivery.pk)
        deliveries.append(delivery)
    return deliveries


def message_created(message) -> list[WebhookDelivery]:
    """``message.created`` for a message of a conversation: the visitor's, the assistant's or a team
    member's (role ``agent``), sent after the transaction that stored it commits."""
    conversation = message.conversation
    team_id = conversation.assistant.team_id
    return emit(
        team=team_id,
        event_type="message.created",
        data={
            "message_id": message.pk,
            "conversation_id": conversation.pk,
            "assistant_id": conversation.assistant_id,
            "role": message.role,
            "text": message.text,
            "unanswered": message.unanswered,
            "created_at": message.created_at.isoformat(),
        },
    )


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again from the dashboard, with the same webhook-id (receivers deduplicate on it)
    and a fresh retry schedule."""
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.schedule_step = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "schedule_step", "next_attempt_at"])
    _enqueue(delivery.pk)
    return delivery


def _excerpt(response: httpx.Response) -> str:
    """The first bytes of the reply, read no further (the client caps the body anyway)."""
    kept = b""
    for piece in response.iter_bytes():
        kept += piece
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")  # PostgreSQL text has no NUL


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    """POST the delivery once: (status code or None, error, the reply's first bytes)."""
    body = signing.body_bytes(delivery.payload)
    headers = signing.signed_headers(
        message_id=delivery.message_id, at=timezone.now(), body=body, secrets_in_use=secrets_in_use(endpoint)
    )
    timeout = settings.WEBHOOK_TIMEOUT
    try:
        with http.sync_client(
            timeout=timeout, deadline=timeout, max_bytes=settings.WEBHOOK_RESPONSE_MAX_BYTES
        ) as client:
            with client.stream("POST", endpoint.url, content=body, headers=headers) as response:
                try:
                    excerpt = _excerpt(response)
                except (httpx.DecodingError, httpx.TimeoutException) as exc:  # the status came: it counts
                    excerpt = f"(the answer's body was not read: {type(exc).__name__})"
                error = ""
                if 300 <= response.status_code < 400:
                    error = "redirects are not followed"
                elif not 200 <= response.status_code < 300:
                    error = f"the receiver answered {response.status_code}"
                return response.status_code, error, excerpt
    except http.OutboundRefused as exc:
        return None, f"refused: {exc.reason}", ""
    except http.ResponseRefused as exc:
        return None, f"the answer was refused: {exc}", ""
    except httpx.TimeoutException:
        return None, f"no answer within {timeout:g} s", ""
    except httpx.HTTPError as exc:
        return None, f"could not be reached ({type(exc).__name__}: {str(exc)[:120]})", ""


def _lease_key(delivery_id: int) -> str:
    return f"webhook:lease:{delivery_id}"


def _lease_record(delivery_id: int, holder: str, attempts: int, until, seconds: float) -> None:
    """Note in Redis which task holds the delivery's lease, on which attempt and until when (best effort:
    without it a redelivered task cannot take the lease over, and the sweep sends once the lease ends)."""
    if not holder:
        return
    value = json.dumps({"holder": holder, "attempts": attempts, "until": until.isoformat()})
    try:
        redis_client().set(_lease_key(delivery_id), value, ex=int(seconds) + 60)
    except redis.RedisError:
        pass


def _lease_release(delivery_id: int, holder: str) -> None:
    if not holder:
        return
    try:
        redis_client().delete(_lease_key(delivery_id))
    except redis.RedisError:
        pass


def _lease_taken_over(delivery_id: int, holder: str, now, lease: timedelta) -> bool:
    """Take over the lease that this very task (``holder``, its task id) took on an earlier delivery of
    it, when that one died mid-send (its worker was killed): only if the lease is still the one it
    took and no attempt was recorded since — so never a delivery whose next try is a scheduled retry,
    nor one that another task claimed after the lease ended."""
    try:
        noted = redis_client().get(_lease_key(delivery_id))
    except redis.RedisError:
        return False
    if not noted:
        return False
    noted = json.loads(noted)
    if noted.get("holder") != holder:
        return False
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=WebhookDelivery.Status.PENDING,
            attempts=noted["attempts"],
            next_attempt_at=datetime.fromisoformat(noted["until"]),
        ).update(next_attempt_at=now + lease)
    )


def delivery_attempt(*, delivery_id: int, holder: str = "", redelivered: bool = False) -> str:
    """Try a due delivery once and log it; schedule the next try, or give up past the schedule.

    Claims the delivery first (its next try moved past this one's end: a lease), so two workers given
    the same id send it once; a delivery already sent, given up or not yet due is left alone. Returns
    what happened ("succeeded", "retry", "failed", "skipped").

    ``holder`` (the task's id) is noted in Redis with the lease while the attempt runs; a
    ``redelivered`` task with that same id — its worker died mid-send — takes the lease over at once
    instead of waiting for it to end and the sweep (see :func:`_lease_taken_over`)."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT * 2 + 30)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now + timedelta(seconds=1)
    ).update(next_attempt_at=now + lease)
    if not claimed and not (holder and redelivered and _lease_taken_over(delivery_id, holder, now, lease)):
        return "skipped"
    try:
        return _attempt(delivery_id, holder, now + lease, lease)
    finally:
        _lease_release(delivery_id, holder)


def _attempt(delivery_id: int, holder: str, until, lease: timedelta) -> str:
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    _lease_record(delivery_id, holder, delivery.attempts, until, lease.total_seconds())
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None
        )
        return "failed"
    started = time.monotonic()
    status_code, error, excerpt = _post(endpoint, delivery)
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = not error
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts + 1,
            status_code=status_code,
            error=error[:300],
            duration_ms=duration_ms,
            response_excerpt=excerpt,
        )
        delivery.attempts += 1
        delivery.last_status_code = status_code
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            outcome = "succeeded"
        else:
            schedule = settings.WEBHOOK_RETRY_SCHEDULE
            if delivery.schedule_step < len(schedule):
                wait = schedule[delivery.schedule_step]
                delivery.schedule_step += 1
                delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
                if wait <= COUNTDOWN_MAX:
                    _enqueue(delivery.pk, countdown=wait)
                outcome = "retry"
            else:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = None
                outcome = "failed"
        delivery.save()
        if not succeeded:
            _endpoint_failed(endpoint.pk)
    return outcome


def _endpoint_failed(endpoint_id: int) -> None:
    """Count the endpoint's failure; after WEBHOOK_DISABLE_AFTER_DAYS of nothing but failures, disable it."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=now)
    _disable_if_failing_too_long(endpoint_id, now)


def _disable_if_failing_too_long(endpoint_id: int, now) -> bool:
    """Disable the endpoint when its failures began WEBHOOK_DISABLE_AFTER_DAYS ago or more (and no
    success since: a success clears ``failing_since``), give up its waiting deliveries and email the
    team's admins once (after commit). True when this call disabled it."""
    since = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True, failing_since__lte=since).update(
        enabled=False,
        disabled_at=now,
        disabled_reason=f"Every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_DAYS:g} days.",
    )
    if disabled:
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None
        )
        from assistants.tasks import webhook_endpoint_disabled_notify_task

        transaction.on_commit(lambda: webhook_endpoint_disabled_notify_task.delay(endpoint_id))
    return bool(disabled)


def endpoints_failing_sweep(now=None) -> list[int]:
    """Disable every enabled endpoint whose failures began WEBHOOK_DISABLE_AFTER_DAYS ago or more, even
    when no delivery is tried any more (its retries ran out, no new event came): the beat's sweep. The
    team hears it once (``disabled_notified_at``). Returns the ids disabled."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    candidates = WebhookEndpoint.objects.filter(enabled=True, failing_since__lte=since).values_list("pk", flat=True)
    disabled = []
    for endpoint_id in list(candidates[:1000]):
        with transaction.atomic():
            if _disable_if_failing_too_long(endpoint_id, now):
                disabled.append(endpoint_id)
    return disabled


def deliveries_due() -> int:
    """Queue every delivery whose next try is due (the sweep behind long waits and lost tasks)."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in due:
        _enqueue(delivery_id)
    return len(due)
