"""Celery tasks of ingestion: they take ids, are idempotent, and call the services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from ingestion import services
from ingestion.crawling.crawler import CrawlLimits, SiteUnreachable, crawl
from ingestion.models import CrawlRun, Document, EmbeddingSpace
from ingestion.parsers import ParseError

logger = logging.getLogger(__name__)


UNREACHABLE_RETRIES = 5  # a site that does not answer is tried again, 15 s, 30 s, 60 s… later


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=UNREACHABLE_RETRIES)
def source_crawl_task(self, run_id: int) -> None:
    """Crawl a source's website; each new or changed page is queued for indexing."""
    run = CrawlRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or not services.run_begin(run=run):
        return
    run.refresh_from_db()
    source = run.source
    # Source.settings: max_pages, max_depth, include / exclude (globs on path and query) and
    # extra_hosts (host[:port]), render_javascript; see CrawlLimits.
    limits = CrawlLimits(
        max_pages=int(source.settings.get("max_pages", settings.CRAWL_MAX_PAGES)),
        max_depth=int(source.settings.get("max_depth", settings.CRAWL_MAX_DEPTH)),
        include=tuple(source.settings.get("include") or ()),
        exclude=tuple(source.settings.get("exclude") or ()),
        extra_hosts=tuple(source.settings.get("extra_hosts") or ()),
        render_javascript=bool(source.settings.get("render_javascript")),
    )
    known_urls, validators = services.source_known_pages(source=source)
    try:
        events = crawl(
            source.url,
            limits,
            user_agent=settings.OUTBOUND_USER_AGENT,
            validators=validators,
            seeds=known_urls,
            should_stop=lambda: not services.run_still_running(run_id=run.pk),
        )
        for event in events:
            services.run_record_event(run=run, event=event)
    except SiteUnreachable as exc:
        if self.request.retries >= UNREACHABLE_RETRIES:
            services.run_fail(run_id=run.pk, reason=f"the site did not answer: {exc}")
            return
        services.run_requeue(run_id=run.pk)
        raise self.retry(countdown=15 * 2**self.request.retries) from exc
    except Exception as exc:  # a bug or an outage: the run fails with its reason, the worker lives on
        logger.exception("crawl of %s failed", source.url)
        services.run_fail(run_id=run.pk, reason=f"crawl stopped: {exc}")
        return
    services.run_crawl_finished(run=run)  # does nothing to a run paused or cancelled meanwhile


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def document_prepare_task(document_id: int) -> None:
    """Download (added by address) and parse (in the sandbox) one file, then queue its embedding.

    On the ``ingest`` queue. A redelivered task finds the file parsed and only queues the embedding.
    """
    try:
        document = services.document_prepare(document_id=document_id)
    except ParseError as exc:
        services.document_fail(document_id=document_id, reason=exc.reason)
    except Exception as exc:
        logger.exception("preparing document %s failed", document_id)
        services.document_fail(document_id=document_id, reason=f"parsing failed: {exc}")
    else:
        if document is not None:
            document_index_task.delay(document_id)
        return
    _finish_run_of(document_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def document_index_task(document_id: int) -> None:
    """Chunk and embed a document, with the other documents of its assistant that wait for it (on the
    ``embed`` queue, which GPU workers can own). A document another task took into its batch is left
    to that task."""
    waiting = Document.objects.filter(pk=document_id, status=Document.Status.PENDING).defer("sections").first()
    if waiting is not None and waiting.claimed_by not in (None, document_id):
        return  # in another task's batch: that task indexes it and closes its run (most tasks of a crawl)
    if waiting is not None and services.document_needs_preparing(waiting):  # queued before its file was parsed
        document_prepare_task.delay(document_id)
        return
    # Most tasks of a crawl come after their document was indexed in another task's batch: with
    # nothing pending and nothing held from an earlier delivery, there is nothing to claim.
    has_work = waiting is not None or services.documents_held_by(document_id=document_id)
    batch = services.documents_index_claim(document_id=document_id) if has_work else None
    if batch is None:
        _finish_run_of(document_id)
        return
    services.documents_index_batch(batch=batch)
    _finish_run_of(document_id, *(document.pk for document in batch.documents))


def _finish_run_of(*document_ids: int) -> None:
    # Only runs waiting for their indexing can finish here (a run still crawling is finished by its
    # crawl, which moves it to indexing and checks it then).
    run_ids = Document.objects.filter(pk__in=document_ids, last_run__status=CrawlRun.Status.INDEXING).values_list(
        "last_run_id", flat=True
    )
    for run_id in sorted(set(run_ids)):
        services.run_finish_if_indexed(run_id=run_id)


@shared_task(ignore_result=True)
def sources_recrawl_due_task() -> None:
    """Beat, every few minutes: start the crawls that sources' schedules say are due."""
    for source in services.sources_due_for_recrawl():
        services.source_crawl_start(source=source)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def space_build_task(space_id: int) -> None:
    """Re-embed an assistant's documents into a new embedding space, then flip to it."""
    space = EmbeddingSpace.objects.filter(pk=space_id, status=EmbeddingSpace.Status.BUILDING).first()
    if space is not None:
        services.space_build(space=space)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def archive_unpack_task(run_id: int) -> None:
    """Unpack an uploaded zip of documents in a sandboxed child, then queue its files (the ingest queue)."""
    services.archive_unpack(run_id=run_id)
