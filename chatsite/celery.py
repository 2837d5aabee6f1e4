"""The Celery app: one per project, it finds each app's tasks.py."""

import os

import celery
from celery.contrib.django.task import DjangoTask
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init, worker_ready
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


# What a task that cannot reach the database raises (psycopg's errors, as Django wraps them).
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)


class Task(DjangoTask):
    """Every task of the project (Django's task class, with ``delay_on_commit``). One that finds the database unreachable (restarting, a failover, a pool
    that timed out waiting for it) is tried again a few seconds later, on an exponential schedule (about
    2, 4, 8, ... s, at most a minute apart, nine tries in all), rather than lost: its message was already
    taken from the broker. Tasks are idempotent, so running one again is safe. A task that declares its
    own ``autoretry_for`` adds these errors to it (see ``assistants.tasks.EMAIL_TASK``)."""

    autoretry_for = DATABASE_UNREACHABLE
    retry_backoff = 2
    retry_backoff_max = 60
    retry_kwargs = {"max_retries": 8}


app = celery.Celery("chatsite", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

POOL_PROCESSES_ENV = "CHATSITE_POOL_PROCESSES"


@worker_init.connect
def share_the_cores(sender, **kwargs):
    """Tell a prefork worker's processes how many they are, so that each embeds on its share of the
    cores (``EMBEDDING_THREADS=0``): a worker of concurrency 2 on two cores runs two one-thread models,
    not two two-thread models fighting for the cores (measured with bench_ingest: twice as slow)."""
    if "prefork" in str(getattr(sender, "pool_cls", "prefork")) and isinstance(sender.concurrency, int):
        os.environ[POOL_PROCESSES_ENV] = str(max(1, sender.concurrency))


@task_prerun.connect
@task_postrun.connect
def connections_between_tasks(sender=None, **kwargs):
    """Between a worker's tasks, what Django does between requests: close the connections that are
    unusable or older than CONN_MAX_AGE, keep the others (settings.CELERY_DB_REUSE_MAX stops Celery
    from closing them all). Not for an eager task, which runs inside its caller's transaction."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def a_pool_of_its_own(**kwargs):
    """A prefork child starts without the parent's connection pool: the pool's threads did not survive the
    fork and its connections belong to the parent (they are left to it, not closed)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    DatabaseWrapper._connection_pools.clear()


@worker_process_init.connect
def memory_handed_back(**kwargs):
    """A prefork child gives the memory its tasks freed back to the system (chatsite.lib.memory)."""
    from django.conf import settings

    from chatsite.lib.memory import start_trimming

    start_trimming(settings.MALLOC_TRIM_SECONDS)


@worker_ready.connect
def report_at_start(**kwargs):
    """What the worker runs with (the lexical leg of search), once it is ready. The parent process works no
    task: it hands back the connection (and pool) the report opened."""
    from django.db import connection

    from chatsite import startup

    startup.report("worker")
    connection.close()
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close_pool()
