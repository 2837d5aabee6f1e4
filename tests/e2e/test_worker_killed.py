"""A worker killed with SIGKILL in the middle of a crawl: after a restart the source completes
with exactly the chunks a clean run produces — none lost, none doubled. Killed in the middle of
sending an email: the redelivered task sends it, once. Killed (its pool child, then the whole worker)
while a webhook receiver holds the request: the redelivered task takes over its lease at once and the
delivery succeeds, one attempt recorded (test_worker_killed_indexing.py has uploads and model switches)."""

import asyncio
import threading
import time
from functools import partial
from http.server import ThreadingHTTPServer

import pytest
from django.db import connection

from assistants.models import Lead, WebhookDelivery
from assistants.tasks import lead_notify_task
from assistants.webhooks import services as webhook_services
from ingestion import services
from ingestion.models import CrawlRun, Document
from tests.conftest import DRF_SITE, wait_for
from tests.factories import make_assistant, make_team, make_user
from tests.mail import Mailbox, SmtpServer
from tests.servers import QuietHandler, start_serving
from tests.webhooks import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY = "15"  # seconds before Redis hands an unacknowledged task to another worker
# How often a worker looks for such tasks: every second here, not every 10 s as deployed, so that the
# restarted worker takes the task back as soon as it may (the same path, up to 9 s less waiting per kill).
RESTORE = "1"
LIMITS = {"max_pages": 12, "max_depth": 2}


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True


class SlowHandler(QuietHandler):
    def do_GET(self):
        time.sleep(0.5)  # a slow site, so that the kill lands in the middle of the crawl
        super().do_GET()


@pytest.fixture
def slow_drf_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SlowHandler, directory=str(DRF_SITE)))
    start_serving(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def chunk_rows(assistant) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select d.url, c.ordinal, c.text, c.anchor from ingestion_chunk c"
            " join ingestion_document d on d.id = c.document_id"
            " join ingestion_source s on s.id = d.source_id where s.assistant_id = %s",
            [assistant.pk],
        )
        return sorted(cursor.fetchall())


def crawl(assistant, site):
    source = services.source_create_website(assistant=assistant, url=f"{site}/api-guide/", **LIMITS)
    return services.source_crawl_start(source=source)


def test_a_killed_worker_loses_and_doubles_nothing(start_worker, slow_drf_site):
    drf_site = slow_drf_site
    worker = start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    interrupted = make_assistant()
    run = crawl(interrupted, drf_site)
    wait_for(
        lambda: CrawlRun.objects.filter(pk=run.pk, status="running", pages_fetched__gte=3).exists(),
        timeout=300,
        interval=0.1,
        message="the crawl under way",
    )
    worker.kill()
    run.refresh_from_db()
    assert run.status == "running" and run.pages_fetched < LIMITS["max_pages"], "the kill missed the crawl"

    start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == "done", timeout=400, message="the crawl to resume")
    run.refresh_from_db()
    assert run.attempts >= 2, "the crawl task was delivered again after the kill"

    clean = make_assistant()
    clean_run = crawl(clean, drf_site)
    wait_for(lambda: CrawlRun.objects.get(pk=clean_run.pk).status == "done", timeout=400, message="the clean crawl")

    interrupted_rows, clean_rows = chunk_rows(interrupted), chunk_rows(clean)
    assert len(clean_rows) > 50
    assert len(set(interrupted_rows)) == len(interrupted_rows), "doubled chunks"
    assert interrupted_rows == clean_rows
    assert (
        Document.objects.filter(last_run=run, status="ready").count()
        == Document.objects.filter(last_run=clean_run, status="ready").count()
    )


class StallingMailbox(Mailbox):
    """A mail server that holds its first message for a while and then turns it away (451): the worker
    sending it is killed in between, so that first send never completes."""

    def __init__(self):
        super().__init__()
        self.stalled = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if not self.stalled.is_set():
            self.stalled.set()
            await asyncio.sleep(6)
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_worker_killed_while_sending_an_email_loses_no_email(start_worker):
    """The new-lead email claimed by a worker killed mid-send is sent by the redelivered task, once."""
    server = SmtpServer(StallingMailbox())
    try:
        env = {
            "CELERY_VISIBILITY_TIMEOUT": VISIBILITY,
            "CELERY_RESTORE_INTERVAL": RESTORE,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(server.port),
        }
        worker = start_worker(**env)
        owner = make_user()
        team = make_team(owner=owner)
        lead = Lead.objects.create(team=team, assistant=make_assistant(team=team), name="Ada", email="ada@example.com")
        lead_notify_task.delay(lead.pk)
        wait_for(server.mailbox.stalled.is_set, timeout=120, message="the worker sending the email")
        worker.kill()
        lead.refresh_from_db()
        assert lead.notified_at is None and not server.mailbox.messages

        start_worker(**env)  # the unacknowledged task comes back after the visibility timeout
        message = server.mailbox.wait_for(owner.email, timeout=120)
        assert "Ada" in message["Subject"]
        time.sleep(2)
        assert len(server.mailbox.messages) == 1
        lead.refresh_from_db()
        assert lead.notified_at is not None
    finally:
        server.stop()


def test_a_webhook_held_by_killed_workers_is_delivered_once_the_task_comes_back(start_worker, settings):
    """The receiver holds the first two requests; the pool child sending the first is killed (the main
    process requeues the task, redelivered), then the whole worker sending the second. The redelivered
    task takes over the lease its dead worker held at once — well before the lease would end and the
    beat's sweep (not running here) would send it again — and the delivery succeeds with one attempt."""
    receiver = Receiver()
    try:
        receiver.stall_first = 2
        settings.OUTBOUND_ALLOWED_HOSTS = [receiver.host]
        # a long lease (WEBHOOK_TIMEOUT * 2 + 30 = 110 s): only a takeover delivers within this test
        env = {
            "CELERY_VISIBILITY_TIMEOUT": VISIBILITY,
            "CELERY_RESTORE_INTERVAL": RESTORE,
            "OUTBOUND_ALLOWED_HOSTS": receiver.host,
            "WEBHOOK_TIMEOUT": "40",
        }
        worker = start_worker(**env)
        team = make_team(owner=make_user())
        endpoint = webhook_services.endpoint_create(team=team, url=receiver.url, events=["lead.created"])
        receiver.secrets = [endpoint.secret]
        (delivery,) = webhook_services.emit(team=team, event_type="lead.created", data={"id": 1})

        assert receiver.stalled.acquire(timeout=120), "the worker posting the delivery"
        lease_end = WebhookDelivery.objects.get(pk=delivery.pk).next_attempt_at
        assert worker.kill_child(), "the worker had no pool child"
        assert receiver.stalled.acquire(timeout=60), "the requeued task posting it again"
        worker.kill()
        delivery.refresh_from_db()
        assert delivery.status == "pending" and delivery.attempts == 0

        start_worker(**env)  # the unacknowledged task comes back after the visibility timeout
        wait_for(
            lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded",
            timeout=80,
            message="the redelivered task to take over the lease and deliver",
        )
        delivery.refresh_from_db()
        assert delivery.delivered_at < lease_end, "delivered by the sweep after the lease, not by the takeover"
        assert delivery.attempts == 1 and delivery.attempt_log.count() == 1
        requests = receiver.verified()
        assert len(requests) == 3 and {r["headers"]["webhook-id"] for r in requests} == {delivery.message_id}
    finally:
        receiver.close()
