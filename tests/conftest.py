"""Session-wide fixtures: the real embedded PostgreSQL, a real Redis, real local web servers,
and a real Celery worker process for end-to-end tests."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from chatsite.db import database_url
from chatsite.env import shared_data_dir
from chatsite.worker_process import WorkerProcess
from tests import vectors
from tests.servers import serve_directory

REPO = Path(__file__).resolve().parent.parent
SHARED = shared_data_dir(REPO)
DRF_SITE = SHARED / "sites" / "drf"


@pytest.hookimpl(trylast=True)  # after pytest-rerunfailures has made its record of failures
def pytest_configure(config):
    """One store of computed vectors for the whole run (``tests.vectors``): made by the first pytest process
    (the controller under xdist), whose test processes and their children inherit its address. Each test
    process counts its own tests' attempts (:func:`count_attempts_locally`)."""
    if not os.environ.get(vectors.STORE_ENV):
        folder = tempfile.mkdtemp(prefix="chatsite-test-vectors-")
        os.environ[vectors.STORE_ENV] = str(Path(folder) / "vectors.sqlite3")
        config._vector_store_folder = folder
    count_attempts_locally(config)


def count_attempts_locally(config) -> None:
    """Under xdist, pytest-rerunfailures keeps every test's attempts in the controller, asked over a socket
    before each test that may rerun (so that a test whose process died can be run again elsewhere), and
    every test here may (``SERVER_CRASH_ERRORS``). Each question waits for the controller, busy with the
    processes' reports, and its answer is read a byte at a time: ~40 ms a test, 15 of `make test-fast`'s
    ~100 s. A test process counts attempts itself instead (the plugin's own in-process record; a rerun
    happens in the process where the test failed); a process that dies takes its test down, as it would
    without reruns."""
    from pytest_rerunfailures import ClientStatusDB, StatusDB

    if isinstance(getattr(config, "failures_db", None), ClientStatusDB):
        config.failures_db.sock.close()
        config.failures_db = StatusDB()


def pytest_unconfigure(config):
    folder = getattr(config, "_vector_store_folder", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(vectors.STORE_ENV, None)


# What a test's database connection raises when the PostgreSQL server went away under it. The pip package's
# own pg_textsearch (1.0.0) stopped the whole server three times under this suite's load: a backend
# inserting chunks spun on a lock in the extension's shared memory until PostgreSQL panicked ("stuck
# spinlock detected at LWLockWaitListLock") and restarted every connection. The vendored 1.4.0 that
# `make install` builds replaces it (docs/operations.md); a crash of the server stays possible, and such a
# test runs once more (pytest-rerunfailures), reported as a rerun; any other failure, or the same one
# twice, fails.
SERVER_CRASH_ERRORS = [
    "stuck spinlock detected",
    "terminating connection because of crash of another server process",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "the connection is closed",
]


@pytest.hookimpl(trylast=True)  # after tests/e2e and tests/browser have marked their tests
def pytest_collection_modifyitems(config, items):
    """The files with long tests (end to end, browser, slow) first. ``make test`` hands whole files to its
    processes in the order collected (``--dist loadfile --no-loadscope-reorder``), each taking the next
    one as it finishes: long files first and the many short ones after, they finish together, where
    the long ones handed out last (xdist's own order: the files with most tests first) left one process
    working alone at the end. A test without reruns of its own runs once more if the database server
    crashed under it (``SERVER_CRASH_ERRORS``)."""
    long_files = {item.path for item in items if {"e2e", "browser", "slow"} & {m.name for m in item.iter_markers()}}
    items.sort(key=lambda item: item.path not in long_files)  # a stable sort: each file keeps its order
    for item in items:
        if item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=SERVER_CRASH_ERRORS))


@pytest.fixture(scope="session")
def drf_site():
    """The real Django REST framework documentation site, served on loopback."""
    assert DRF_SITE.is_dir(), f"shared data missing: {DRF_SITE}"
    server, url = serve_directory(DRF_SITE)
    yield url
    server.shutdown()


@pytest.fixture
def drf_vectors(transactional_db):
    """For the tests that crawl the DRF site through a real worker: the site's vectors, once the run's
    first such test has computed them with the model, are in the embedding cache before the crawl
    (``tests.vectors``); what the model computed is kept afterwards."""
    vectors.cache_seed("drf-site")
    yield
    vectors.keep("drf-site", vectors.cache_rows())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, migrated (pytest-django's), then no more content types and permissions made after
    each committed test: Django's flush sends migrate's ``post_migrate`` again each time, ~25 queries that
    find them all there (the tests' flush keeps them, ``tests/postgresql/base.py``).

    At the end, the connections still open on the test database are ended before it is dropped: those the
    pool had lent to this process's other threads (streams, thread pools) and never got back. PostgreSQL
    waited 5 s for them, then refused to drop it ("being accessed by other users") in every run."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes
    from django.db import connection
    from django.db.models.signals import post_migrate

    receivers = [  # as django.contrib.auth and django.contrib.contenttypes connect them
        (create_permissions, "django.contrib.auth.management.create_permissions"),
        (create_contenttypes, None),
    ]
    for receiver, uid in receivers:
        assert post_migrate.disconnect(receiver, dispatch_uid=uid), receiver
    yield
    for receiver, uid in receivers:
        post_migrate.connect(receiver, dispatch_uid=uid)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every test's rate limits count from zero (the windows live in the shared test Redis), and no
    "already notified" mark of an earlier run (whose database reused the same ids) holds an email back."""
    from chatsite.lib.shared_redis import redis_client

    redis_client().eval(FORGET_KEYS, 0, "rate:*", "notified:*")  # one round trip (two SCANs took ~1 ms a test)


# Deletes the keys matching each pattern given; KEYS is fine on the tests' small database.
FORGET_KEYS = """
for _, pattern in ipairs(ARGV) do
    for _, key in ipairs(redis.call('KEYS', pattern)) do redis.call('DEL', key) end
end
"""


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd); its ``mailbox`` holds what it received."""
    from tests.mail import SmtpServer

    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server, settings):
    """Django sends its emails over SMTP to the test's SMTP server; the messages it received."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    smtp_server.mailbox.messages.clear()
    return smtp_server.mailbox


@pytest.fixture(scope="session")
def embedder():
    from ingestion.embedding import get_embedder

    return get_embedder("")


def purge_queues() -> None:
    """Empty every queue of the test broker (Celery's own purge only empties the default queue), and forget
    the tasks that workers stopped by a kill had taken and not acknowledged (a later worker would take them
    back after their visibility timeout, into another test)."""
    from chatsite.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        for queue in ("celery", "ingest", "embed"):
            client.delete(queue, *(f"{queue}\x06\x16{priority}" for priority in (3, 6, 9)))
        client.delete(channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key)


@pytest.fixture
def start_worker(transactional_db):
    """Start real Celery workers on the test database and the test Redis; all stopped at the end."""
    from django.db import connection

    purge_queues()
    workers = []

    def start(**env) -> WorkerProcess:
        workers.append(
            WorkerProcess(database_url(connection.settings_dict), log_path=REPO / ".data" / "test-worker.log", **env)
        )
        return workers[-1]

    yield start
    # Killed, not asked to finish: a warm shutdown took 3–4 s of every end-to-end test, all of it after the
    # test had what it waited for; what a killed worker leaves in the broker the next start purges.
    for worker in workers:
        if worker.exited() is None:
            worker.kill()
        worker.stop()  # closes its log


@pytest.fixture
def eager_tasks():
    """Tasks that a task queues run at once in this process, as a worker would run them next."""
    from chatsite.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def celery_worker_process(start_worker):
    return start_worker()


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


@pytest.fixture
def llm(settings):
    """Point the app at a local OpenAI-compatible server: ``llm(server)``."""

    def configure(server):
        settings.LLM_BASE_URL = server.url + "/v1"
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "gpt-test"
        settings.LLM_PROVIDER = "openai"
        settings.OUTBOUND_ALLOW_PRIVATE = True

    return configure
