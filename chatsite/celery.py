"""The Celery app: one per project, it finds each app's tasks.py."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

app = Celery("chatsite")
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
