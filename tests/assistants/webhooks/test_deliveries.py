"""Webhook deliveries to a real receiver on loopback that verifies every Standard Webhooks signature
and fails on purpose: retries on the schedule, the attempt log, secret rotation, redirects, large and
slow answers, refusals at send, the endpoint disabled after days of failures (with its email), and
replays. The delivery task's function runs here as a worker would run it (tests/e2e has the worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistants import services as assistant_services
from assistants.models import Conversation, Membership, Message, WebhookDelivery, WebhookEndpoint
from assistants.tasks import webhook_deliver_task
from assistants.webhooks import services
from tests.factories import make_assistant, make_team, make_user
from tests.mail import body
from tests.webhooks import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.OUTBOUND_ALLOWED_HOSTS = [server.host]  # this one loopback receiver, and nothing else private
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]
    yield server
    server.close()


@pytest.fixture
def team():
    return make_team(owner=make_user())


def endpoint_for(team, receiver, events=("lead.created",)) -> WebhookEndpoint:
    endpoint = services.endpoint_create(team=team, url=receiver.url, events=list(events))
    receiver.secrets = [endpoint.secret]
    return endpoint


def due_now(delivery: WebhookDelivery) -> None:
    """Time passes: the delivery's next try is due."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_emit_creates_one_delivery_per_endpoint_that_wants_the_event(team, receiver):
    wants = endpoint_for(team, receiver, events=["lead.created", "conversation.rated"])
    endpoint_for(team, receiver, events=["handoff.requested"])
    disabled = endpoint_for(team, receiver, events=["lead.created"])
    WebhookEndpoint.objects.filter(pk=disabled.pk).update(enabled=False)
    endpoint_for(make_team(), receiver, events=["lead.created"])  # another team's

    deliveries = services.emit(team=team, event_type="lead.created", data={"id": 1})

    assert [d.endpoint_id for d in deliveries] == [wants.pk]
    assert deliveries[0].payload["type"] == "lead.created" and deliveries[0].payload["data"] == {"id": 1}
    assert deliveries[0].message_id.startswith("msg_")
    with pytest.raises(ValueError):
        services.emit(team=team, event_type="lead.deleted", data={})


def test_a_failing_receiver_gets_the_retries_on_the_schedule_then_the_signed_event(team, receiver):
    endpoint = endpoint_for(team, receiver)
    receiver.fail_first = 2
    (delivery,) = services.emit(team=team, event_type="lead.created", data={"name": "<b>Ada</b>"})

    started = timezone.now()
    assert webhook_deliver_task(delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert timedelta(seconds=4) < delivery.next_attempt_at - started < timedelta(seconds=7)  # the first wait: 5 s
    assert webhook_deliver_task(delivery.pk) == "skipped"  # not due yet: nothing sent
    assert len(receiver.received) == 1

    due_now(delivery)
    assert webhook_deliver_task(delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert timedelta(seconds=290) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=300)  # then 5 min
    due_now(delivery)
    assert webhook_deliver_task(delivery.pk) == "succeeded"
    assert webhook_deliver_task(delivery.pk) == "skipped"  # delivered: never again

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3 and delivery.last_status_code == 200
    log = list(delivery.attempt_log.values_list("number", "status_code", "error"))
    assert log == [(1, 500, "the receiver answered 500"), (2, 500, "the receiver answered 500"), (3, 200, "")]
    assert all(r["verified"] for r in receiver.received)  # every attempt carried a valid signature
    assert {r["headers"]["webhook-id"] for r in receiver.received} == {delivery.message_id}
    assert receiver.received[-1]["payload"]["data"] == {"name": "<b>Ada</b>"}  # JSON data, as typed
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_past_the_schedule_the_delivery_fails_and_can_be_replayed_from_the_dashboard(team, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [1]
    endpoint = endpoint_for(team, receiver)
    receiver.fail_first = 2
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "retry"
    due_now(delivery)
    assert webhook_deliver_task(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_attempt_at is None

    owner = Membership.objects.get(team=team).user
    browser = Client()
    browser.force_login(owner)
    page = browser.get(reverse("webhook_detail", args=[endpoint.pk]))
    assert page.status_code == 200 and b"the receiver answered 500" in page.content
    assert browser.post(reverse("webhook_delivery_replay", args=[delivery.pk])).status_code == 302
    assert webhook_deliver_task(delivery.pk) == "succeeded"
    assert [r["status"] for r in receiver.received] == [500, 500, 200]
    assert receiver.received[-1]["headers"]["webhook-id"] == delivery.message_id  # the same message, again


def test_a_rotated_secret_signs_beside_the_new_one_for_its_grace_period(team, receiver):
    endpoint = endpoint_for(team, receiver)
    old = endpoint.secret
    services.endpoint_secret_rotate(endpoint=endpoint)
    assert endpoint.secret != old

    receiver.secrets = [old]  # a receiver not yet updated
    (first,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(first.pk) == "succeeded"
    assert receiver.received[-1]["headers"]["webhook-signature"].count("v1,") == 2

    receiver.secrets = [endpoint.secret]  # an updated one
    (second,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(second.pk) == "succeeded"

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    receiver.secrets = [old]  # past the grace period the old secret signs no more
    (third,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(third.pk) == "retry"
    assert receiver.received[-1]["verified"] is False
    assert receiver.received[-1]["headers"]["webhook-signature"].count("v1,") == 1


def test_redirects_are_not_followed(team, receiver):
    endpoint_for(team, receiver)
    receiver.mode = "redirect"
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "retry"
    assert [r["path"] for r in receiver.received] == ["/hooks/chatsite"]  # /elsewhere never asked
    attempt = delivery.attempt_log.get()
    assert attempt.status_code == 302 and attempt.error == "redirects are not followed"


def test_a_large_answer_is_read_no_further_than_its_first_bytes(team, receiver):
    endpoint_for(team, receiver)
    receiver.mode = "large"
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "succeeded"
    assert len(delivery.attempt_log.get().response_excerpt) == services.EXCERPT_BYTES


def test_a_slow_receiver_is_cut_off_at_the_timeout(team, receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    endpoint_for(team, receiver)
    receiver.mode = "slow"
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "retry"
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and attempt.error == "no answer within 0.5 s"
    assert 400 <= attempt.duration_ms < 2500


def test_a_private_address_is_refused_at_send_when_the_allowance_is_gone(team, receiver, settings):
    endpoint_for(team, receiver)
    settings.OUTBOUND_ALLOWED_HOSTS = []  # e.g. saved while allowed, or a name that now resolves to loopback
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "retry"
    assert receiver.received == []
    assert delivery.attempt_log.get().error == "refused: address 127.0.0.1 is loopback"


def test_days_of_failures_disable_the_endpoint_and_email_the_admins(
    team, receiver, settings, mailbox, eager_tasks, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 3
    admin = make_user()
    Membership.objects.create(team=team, user=admin, role="admin")
    member = make_user()
    Membership.objects.create(team=team, user=member, role="member")
    endpoint = endpoint_for(team, receiver)
    receiver.fail_first = 100
    (delivery,) = services.emit(team=team, event_type="lead.created", data={})
    (waiting,) = services.emit(team=team, event_type="lead.created", data={})
    assert webhook_deliver_task(delivery.pk) == "retry"
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None  # one day of failures is not enough

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3, seconds=1))
    due_now(delivery)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver_task(delivery.pk)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "3 days" in endpoint.disabled_reason
    waiting.refresh_from_db()
    assert waiting.status == "failed"
    assert services.emit(team=team, event_type="lead.created", data={}) == []

    owner = Membership.objects.get(team=team, role="owner").user
    message = mailbox.wait_for(admin.email)
    assert mailbox.to(owner.email) and not mailbox.to(member.email)
    assert "disabled" in message["Subject"] and receiver.url in body(message)
    assert message.get_body(preferencelist=("html",)) is not None
    webhook_deliver_task.app.tasks["assistants.tasks.webhook_endpoint_disabled_notify_task"](endpoint.pk)
    assert len(mailbox.to(admin.email)) == 1  # once

    # Enabled again from the dashboard: its failures start over.
    browser = Client()
    browser.force_login(owner)
    response = browser.post(
        reverse("webhook_detail", args=[endpoint.pk]),
        {"url": endpoint.url, "events": ["lead.created"], "enabled": "on", "action": "save"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is None and endpoint.disabled_reason == ""


def test_the_beat_sweep_disables_an_endpoint_failing_for_days_with_no_new_traffic(
    team, receiver, settings, mailbox, eager_tasks, django_capture_on_commit_callbacks
):
    """Its retries ran out and no event came since: no delivery attempt will ever disable it, so the
    beat's sweep does (once, with one email), and leaves alone an endpoint that failed only recently or
    succeeded since."""
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 3
    settings.WEBHOOK_RETRY_SCHEDULE = []
    admin = make_user()
    Membership.objects.create(team=team, user=admin, role="admin")
    endpoint = endpoint_for(team, receiver)
    recent = endpoint_for(team, receiver)
    healthy = endpoint_for(team, receiver)
    receiver.fail_first = 100
    for failing in (endpoint, recent):
        (delivery,) = [
            d for d in services.emit(team=team, event_type="lead.created", data={}) if d.endpoint_id == failing.pk
        ]
        assert webhook_deliver_task(delivery.pk) == "failed"  # no retry left: nothing will try it again
    WebhookDelivery.objects.filter(endpoint=healthy).delete()
    WebhookDelivery.objects.filter(status="pending").update(status="failed", next_attempt_at=None)
    long_ago = timezone.now() - timedelta(days=3, minutes=1)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=long_ago)
    WebhookEndpoint.objects.filter(pk=recent.pk).update(failing_since=timezone.now() - timedelta(days=2))
    assert WebhookEndpoint.objects.get(pk=healthy.pk).failing_since is None

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver_task.app.tasks["assistants.tasks.webhook_deliveries_due_task"]()  # the beat's entry
    endpoint.refresh_from_db()
    recent.refresh_from_db()
    healthy.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at and "3 days" in endpoint.disabled_reason
    assert recent.enabled and healthy.enabled
    message = mailbox.wait_for(admin.email)
    assert "disabled" in message["Subject"] and endpoint.url in body(message)

    with django_capture_on_commit_callbacks(execute=True):  # the next minute's sweep: nothing again
        assert services.endpoints_failing_sweep() == []
    assert len(mailbox.to(admin.email)) == 1


def test_ratings_and_messages_leave_as_webhooks(team, receiver):
    endpoint_for(team, receiver, events=["conversation.rated", "message.created"])
    assistant = make_assistant(team=team)
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 24)
    assistant_services.message_add(conversation=conversation, role="user", text="How much is it?")
    answer = assistant_services.message_add(conversation=conversation, role="assistant", text="10 € a month.")
    client = Client()
    client.cookies["cs_visitor"] = "v" * 24
    response = client.post(
        reverse("embed_feedback", args=[assistant.public_key]),
        {"message_id": answer.pk, "rating": -1, "comment": "<script>x</script>"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event_type for d in deliveries] == ["message.created", "message.created", "conversation.rated"]
    rated = deliveries[-1].payload["data"]
    assert rated["rating"] == -1 and rated["question"] == "How much is it?" and rated["comment"] == "<script>x</script>"
    assert Message.objects.filter(conversation=conversation).count() == 2
    for delivery in deliveries:
        assert webhook_deliver_task(delivery.pk) == "succeeded"
    assert len(receiver.verified()) == 3


def test_the_sweep_queues_due_deliveries_only(team, receiver, django_capture_on_commit_callbacks):
    endpoint_for(team, receiver)
    (due,) = services.emit(team=team, event_type="lead.created", data={})
    (later,) = services.emit(team=team, event_type="lead.created", data={})
    (done,) = services.emit(team=team, event_type="lead.created", data={})
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=2))
    WebhookDelivery.objects.filter(pk=done.pk).update(status="succeeded")
    with django_capture_on_commit_callbacks() as queued:
        assert services.deliveries_due() == 1
    assert len(queued) == 1  # one task, for the due one; a worker would send it
    assert webhook_deliver_task(due.pk) == "succeeded" and webhook_deliver_task(later.pk) == "skipped"


def leased_by_a_dead_worker(delivery: WebhookDelivery, holder: str) -> None:
    """The state a worker killed mid-send leaves: the delivery claimed (its next try moved to the lease's
    end) and the lease noted in Redis under the task's id, no attempt recorded."""
    lease = timedelta(seconds=services.settings.WEBHOOK_TIMEOUT * 2 + 30)
    until = timezone.now() + lease
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=until)
    delivery.refresh_from_db()
    services._lease_record(delivery.pk, holder, delivery.attempts, until, lease.total_seconds())


def test_a_redelivered_task_takes_over_the_lease_its_dead_worker_held_and_nothing_else(team, receiver):
    endpoint_for(team, receiver)
    (delivery,) = services.emit(team=team, event_type="lead.created", data={"id": 7})
    leased_by_a_dead_worker(delivery, "task-1")

    assert services.delivery_attempt(delivery_id=delivery.pk) == "skipped"  # the lease holds for a new copy
    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-2", redelivered=True) == "skipped"
    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-1") == "skipped"  # not a redelivery
    assert not receiver.received
    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-1", redelivered=True) == "succeeded"
    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-1", redelivered=True) == "skipped"
    assert len(receiver.verified()) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert not services.redis_client().exists(services._lease_key(delivery.pk))  # released after the attempt


def test_a_redelivered_task_never_sends_before_a_scheduled_retry(team, receiver):
    """The worker died after recording a failed attempt (a retry is scheduled) but before releasing its
    lease: the redelivery finds an attempt recorded since the lease and leaves the retry to its time."""
    endpoint_for(team, receiver)
    receiver.fail_first = 1
    (delivery,) = services.emit(team=team, event_type="lead.created", data={"id": 8})
    before = delivery.attempts
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    lease = timedelta(seconds=services.settings.WEBHOOK_TIMEOUT * 2 + 30)
    services._lease_record(delivery.pk, "task-1", before, delivery.next_attempt_at, lease.total_seconds())

    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-1", redelivered=True) == "skipped"
    assert len(receiver.received) == 1


def test_a_lease_claimed_again_after_it_ended_is_not_taken_over(team, receiver):
    """The lease ended and the sweep's copy claimed the delivery: the late redelivery of the first task
    does not send it a second time alongside."""
    endpoint_for(team, receiver)
    (delivery,) = services.emit(team=team, event_type="lead.created", data={"id": 9})
    leased_by_a_dead_worker(delivery, "task-1")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=50))

    assert services.delivery_attempt(delivery_id=delivery.pk, holder="task-1", redelivered=True) == "skipped"
    assert not receiver.received
