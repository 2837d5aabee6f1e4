"""Finding the work whose task was lost, from the database's own state, and queueing it again.

Tasks live in Redis; the database says what should be happening. When the broker loses its queues (Redis
restarted without persistence, a flushed database), work stops with nobody to notice: documents wait
forever, runs stay "queued". A beat task every few minutes (``reconcile_task``) looks for what has waited
longer than ``settings.RECONCILE_AFTER`` seconds without a sign of life and queues its task once more
(every task is idempotent, and a crawl run's lease keeps a duplicate from crawling beside a live one):

* documents still pending: their preparation or indexing (a document held by another task's batch: that
  task's, which finishes what it holds one by one);
* crawl runs queued or running whose heartbeat (begun, or between two pages) is old: the crawl, or the
  unpacking of an uploaded zip;
* runs waiting for their indexing whose documents are all done: closed.

Work is only queued again while its queues are empty: a queue that still holds tasks (a large crawl being
embedded for an hour, say) is work on its way, not lost. Each item found is touched, so it is queued once
per period, not at every sweep.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ingestion.models import CrawlRun, Document
from ingestion.services.documents import document_queue
from ingestion.services.runs import run_finish_if_indexed

logger = logging.getLogger(__name__)

BATCH = 500  # items re-queued per kind and sweep


def queued_tasks(queue: str) -> int:
    """Tasks waiting in a Celery queue of the Redis broker (with kombu's priority sub-queues)."""
    from chatsite.celery import app

    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        names = [queue, *(f"{queue}\x06\x16{priority}" for priority in (3, 6, 9))]
        return sum(client.llen(name) for name in names)


def lost_work_requeue(*, now=None) -> dict[str, int]:
    """Queue again what waited too long; how many of each kind."""
    from ingestion.tasks import archive_unpack_task, document_index_task, source_crawl_task

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.RECONCILE_AFTER)
    counts = {"documents": 0, "crawls": 0, "archives": 0, "runs_closed": 0}
    if queued_tasks("ingest") or queued_tasks("embed"):
        return counts  # tasks are on their way: what waits is not lost
    pending = Document.objects.filter(status=Document.Status.PENDING, updated_at__lt=stale).order_by("pk")[:BATCH]
    for document in pending:
        with transaction.atomic():
            touched = Document.objects.filter(pk=document.pk, status=Document.Status.PENDING, updated_at__lt=stale)
            if not touched.update(updated_at=now):
                continue  # it moved meanwhile
            if document.claimed_by is not None:
                document_index_task.delay_on_commit(document.claimed_by)
            else:
                document_queue(document=document)
        counts["documents"] += 1
    runs = CrawlRun.objects.filter(
        status__in=[CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING], heartbeat_at__lt=stale
    ).order_by("pk")[:BATCH]
    for run in runs:
        with transaction.atomic():
            if not CrawlRun.objects.filter(pk=run.pk, status=run.status, heartbeat_at__lt=stale).update(
                heartbeat_at=now
            ):
                continue
            if "archive" in (run.report or {}):
                archive_unpack_task.delay_on_commit(run.pk)
                counts["archives"] += 1
            else:
                source_crawl_task.delay_on_commit(run.pk)
                counts["crawls"] += 1
    waiting = CrawlRun.objects.filter(status=CrawlRun.Status.INDEXING, heartbeat_at__lt=stale).order_by("pk")[:BATCH]
    for run in waiting:
        CrawlRun.objects.filter(pk=run.pk).update(heartbeat_at=now)
        run_finish_if_indexed(run_id=run.pk)
        counts["runs_closed"] += CrawlRun.objects.filter(pk=run.pk, status=CrawlRun.Status.DONE).exists()
    if any(counts.values()):
        logger.warning("re-queued lost work: %s", counts)
    return counts
