"""The Celery app: one per project, it finds each app's tasks.py."""
import os

from celery import Celery
from celery.signals import worker_init

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
