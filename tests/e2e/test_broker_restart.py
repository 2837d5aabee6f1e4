"""Redis restarted without its queues, with a backlog waiting (the scale issue's faults): the worker
reconnects and consumes new work within 30 s, and the tasks lost with the broker are found again by the
reconciler from the database's state and indexed exactly once."""

import socket
import subprocess
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from chatsite.celery import app
from chatsite.db import database_url
from chatsite.worker_process import WorkerProcess
from ingestion import services
from ingestion.models import CrawlRun, Document
from tests.conftest import REPO, wait_for
from tests.factories import make_assistant
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


class PrivateRedis:
    """A redis-server of this test's own that keeps nothing on disk, so a restart loses every queue."""

    def __init__(self, port: int):
        self.port, self.process = port, None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, interval=0.1, message="redis")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def shutdown_nosave(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], check=False, capture_output=True)
        self.process.wait(timeout=20)


@pytest.fixture
def broker():
    """A private Redis that this process's Celery app sends its tasks to for the test."""
    redis = PrivateRedis(free_port())
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}/0"
    before = app.conf.broker_url
    app.conf.broker_url = url
    app._pool, app.amqp._producer_pool = None, None
    yield redis, url
    app.conf.broker_url = before
    app._pool, app.amqp._producer_pool = None, None
    if redis.process.poll() is None:
        redis.shutdown_nosave()


def upload(source, *names: str, content: bytes | None = None) -> CrawlRun:
    files = [ContentFile(content or f"Note {name}: parcels leave on Tuesdays.".encode(), name=name) for name in names]
    return services.documents_upload(source=source, files=files)


def chunks_per_document(source) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select d.file_name, count(*) from ingestion_chunk c join ingestion_document d on d.id = c.document_id"
            " where d.source_id = %s group by d.file_name",
            [source.pk],
        )
        return dict(cursor.fetchall())


def test_lost_tasks_are_found_again_and_the_worker_reconnects(broker, settings):
    redis, url = broker
    worker = WorkerProcess(
        database_url(connection.settings_dict),
        log_path=REPO / ".data" / "test-worker.log",
        REDIS_URL=url,
        PARSE_TIME_LIMIT="6",
        CHATSITE_PARSER_TEST_HOOKS="1",
    )
    try:
        source = services.source_documents_get_or_create(assistant=make_assistant())
        warm = upload(source, "warm.txt")
        wait_for(lambda: CrawlRun.objects.get(pk=warm.pk).status == "done", timeout=300, message="warm-up")

        upload(source, "busy.txt", content=b"x-test-sleep")  # holds the worker's one process for 6 s
        time.sleep(1.0)
        backlog = upload(source, "a.txt", "b.txt", "c.txt")  # queued behind it...
        redis.shutdown_nosave()  # ... and lost
        redis.start()

        late = upload(source, "late.txt")  # sent after the restart: the worker must reconnect for it
        sent = time.monotonic()
        wait_for(
            lambda: Document.objects.get(source=source, file_name="late.txt").status == "ready",
            timeout=60,
            message="the task sent after the restart",
        )
        assert time.monotonic() - sent < 30, "the worker took more than 30 s to reconnect and consume"
        assert set(Document.objects.filter(last_run=backlog).values_list("status", flat=True)) == {"pending"}

        settings.RECONCILE_AFTER = 0
        found = services.lost_work_requeue()
        # the three queued, and the one the worker was parsing: its connection broke, so it gave the task up
        # (worker_cancel_long_running_tasks_on_connection_loss) and the broker that would redeliver it is gone
        assert found["documents"] == 4
        wait_for(lambda: CrawlRun.objects.get(pk=backlog.pk).status == "done", timeout=120, message="the lost backlog")
        assert CrawlRun.objects.get(pk=late.pk).status == "done"
        assert chunks_per_document(source) == {"warm.txt": 1, "a.txt": 1, "b.txt": 1, "c.txt": 1, "late.txt": 1}
        wait_for(
            lambda: Document.objects.get(source=source, file_name="busy.txt").status == "failed",
            timeout=60,
            message="the hung file failed for its time limit",
        )
    finally:
        worker.stop()
