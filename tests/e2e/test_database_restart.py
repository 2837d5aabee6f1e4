"""PostgreSQL restarting under chat load: a few 503s with Retry-After, then the web process and a
Celery worker carry on by themselves, without a restart of their own.

The web process and the worker reach the test database through a TCP relay of this test's own, so
that only they see the outage (the other test processes share the server): ``down()`` cuts every
connection they hold and refuses new ones, as a restarting server does; ``up()`` listens again.
"""

import socket
import threading
import time

import httpx
import pytest
from django.core.files.base import ContentFile
from django.db import connection

from chatsite.db import database_url
from chatsite.worker_process import WorkerProcess
from ingestion import services
from ingestion.models import Document
from tests.conftest import REPO, purge_queues, wait_for
from tests.factories import make_assistant
from tests.live_server import start_uvicorn, stop
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


class Relay:
    """127.0.0.1:port → the database server (TCP or Unix socket), with a switch."""

    def __init__(self, host: str, port: int):
        self.target = host if host.startswith("/") else (host, port)
        self.port = free_port()
        self.listener = None
        self.pairs: list[socket.socket] = []
        self.lock = threading.Lock()

    def up(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone would not)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for sock in self.pairs:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.pairs.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if isinstance(self.target, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            target = f"{self.target}/.s.PGSQL.5432" if isinstance(self.target, str) else self.target
            server.connect(target)
            with self.lock:
                self.pairs += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


@pytest.fixture
def relay():
    settings_dict = connection.settings_dict
    relay = Relay(settings_dict["HOST"], int(settings_dict["PORT"] or 5432))
    relay.up()
    yield relay
    try:
        relay.listener.close()
    except OSError:
        pass


def relayed_url(relay: Relay) -> str:
    settings_dict = dict(connection.settings_dict, HOST="127.0.0.1", PORT=str(relay.port))
    return database_url(settings_dict)


@pytest.fixture
def web(relay):
    """The app under uvicorn, reaching the database through the relay (offline answers, no model)."""
    process, base = start_uvicorn(
        "database-restart-web.log",
        DATABASE_URL=relayed_url(relay),
        DATABASE_POOL_TIMEOUT="2",
        CHAT_RATE_ADDRESS="0",
        CHAT_RATE_VISITOR="0",
    )
    yield base
    stop(process)


def ask(base: str, slug: str, visitor: int) -> tuple[int, str, str]:
    """One visitor's question: (status, Retry-After, the body's end) — the whole stream is read."""
    response = httpx.post(
        f"{base}/a/{slug}/chat",
        json={"question": "How long do refunds take?"},
        headers={"Cookie": f"cs_visitor=visitor-{visitor:04d}-{'x' * 20}"},
        timeout=30,
    )
    return response.status_code, response.headers.get("Retry-After", ""), response.text[-200:]


def test_the_web_and_a_worker_carry_on_after_the_database_restarts(relay, web):
    assistant = make_assistant(name="Restart Help")
    source = services.source_documents_get_or_create(assistant=assistant)
    purge_queues()
    worker = WorkerProcess(relayed_url(relay), log_path=REPO / ".data" / "test-worker.log", WORKER_POOL_SIZE="2")
    try:
        upload = ContentFile(b"# Refunds\n\nRefunds take five business days to arrive.\n", name="refunds.md")
        services.documents_upload(source=source, files=[upload])
        wait_for(
            lambda: Document.objects.filter(source=source, status="ready").count() == 1,
            timeout=180,
            message="the first document indexed",
        )
        before = [ask(web, assistant.slug, n) for n in range(3)]
        assert all(status == 200 and "event: done" in end for status, _, end in before), before

        relay.down()
        during = [ask(web, assistant.slug, n) for n in range(3, 6)]
        assert {status for status, _, _ in during} == {503}, during
        assert all(retry_after.isdigit() for _, retry_after, _ in during), during
        second = ContentFile(b"# Shipping\n\nParcels ship within two days.\n", name="shipping.md")
        services.documents_upload(source=source, files=[second])  # queued while the worker cannot reach it
        time.sleep(2)

        relay.up()
        # Back without a restart: the pools reconnect (after the back-off they took while the server was
        # away), a few more 503s at most meanwhile, and then every question is answered again.
        back = time.monotonic()
        wait_for(lambda: ask(web, assistant.slug, 6)[0] == 200, timeout=60, interval=0.5, message="answers again")
        recovered = time.monotonic() - back
        after = [ask(web, assistant.slug, n) for n in range(7, 12)]
        assert all(status == 200 and "event: done" in end for status, _, end in after), after
        assert recovered < 30, f"{recovered:.1f} s to answer again"
        wait_for(
            lambda: Document.objects.filter(source=source, status="ready").count() == 2,
            timeout=120,
            message="the worker to index the file queued during the outage",
        )
        assert worker.exited() is None, "the worker died with the database"
    finally:
        worker.stop()
