"""Writes for crawl runs: starting, pausing, resuming and cancelling a crawl, recording what it
found, and closing a run (of a crawl or of uploads) once its documents are indexed."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ingestion.crawling.crawler import CrawlEvent
from ingestion.models import CrawlRun, Document, Source
from ingestion.services.documents import document_store
from ingestion.services.errors import MAX_ATTEMPTS, IngestionError
from ingestion.signals import content_indexed

REPORT_LIMIT = 200  # failed/skipped URLs kept in a crawl report


def documents_run(*, source: Source, count: int) -> CrawlRun:
    """A run of a documents source: it is done when none of its documents waits for indexing."""
    run = CrawlRun.objects.create(
        source=source, status=CrawlRun.Status.INDEXING, attempts=1, started_at=timezone.now(), pages_found=count
    )
    Source.objects.filter(pk=source.pk).update(last_run=run, status=Source.Status.RUNNING, error="")
    return run


def source_crawl_start(*, source: Source) -> CrawlRun:
    """Queue a crawl of ``source`` unless one is already under way (then return that one)."""
    from ingestion.tasks import source_crawl_task

    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.last_run and source.last_run.status == CrawlRun.Status.PAUSED:
            return _run_resume(source, source.last_run)
        if source.last_run and source.last_run.is_active:
            return source.last_run
        run = CrawlRun.objects.create(source=source)
        source.last_run = run
        source.status = Source.Status.QUEUED
        source.error = ""
        source.save(update_fields=["last_run", "status", "error"])
        source_crawl_task.delay_on_commit(run.pk)
    return run


def _locked_run(source: Source) -> tuple[Source, CrawlRun | None]:
    source = Source.objects.select_for_update().get(pk=source.pk)
    run = CrawlRun.objects.select_for_update().filter(pk=source.last_run_id).first()
    return source, run


def run_pause(*, source: Source) -> CrawlRun:
    """Stop the queued or running crawl after the page it is fetching; resume picks it up again."""
    with transaction.atomic():
        source, run = _locked_run(source)
        if run is None or run.status not in {CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING}:
            raise IngestionError("Only a queued or running crawl can be paused.")
        run.status = CrawlRun.Status.PAUSED
        run.save(update_fields=["status"])
        Source.objects.filter(pk=source.pk).update(status=Source.Status.PAUSED)
    return run


def run_resume(*, source: Source) -> CrawlRun:
    """Queue a paused crawl again. It walks the site anew, but the pages it already stored answer
    "unchanged" (conditional requests, content hashes), so they cost one request and no embedding."""
    with transaction.atomic():
        source, run = _locked_run(source)
        if run is None or run.status != CrawlRun.Status.PAUSED:
            raise IngestionError("Only a paused crawl can be resumed.")
        return _run_resume(source, run)


def _run_resume(source: Source, run: CrawlRun) -> CrawlRun:
    from ingestion.tasks import source_crawl_task

    run.status = CrawlRun.Status.QUEUED
    run.attempts = 0  # a pause is not a failure: the attempt budget starts again
    run.save(update_fields=["status", "attempts"])
    Source.objects.filter(pk=source.pk).update(status=Source.Status.QUEUED)
    source_crawl_task.delay_on_commit(run.pk)
    return run


def run_cancel(*, source: Source) -> CrawlRun:
    """End the crawl now. Pages stored so far stay (and finish indexing); nothing is removed."""
    with transaction.atomic():
        source, run = _locked_run(source)
        if run is None or not (run.is_active or run.status == CrawlRun.Status.PAUSED):
            raise IngestionError("There is no crawl under way to cancel.")
        run.status = CrawlRun.Status.CANCELLED
        run.finished_at = timezone.now()
        run.error = "cancelled"
        run.save(update_fields=["status", "finished_at", "error"])
        has_pages = source.documents.exists()
        Source.objects.filter(pk=source.pk).update(
            status=Source.Status.READY if has_pages else Source.Status.IDLE, error=""
        )
    return run


def run_still_running(*, run_id: int, owner: str = "") -> bool:
    """What the crawl task asks between pages: False once the run was paused or cancelled, or taken over by
    another delivery of its task (``owner``); True renews the run's heartbeat."""
    running = CrawlRun.objects.filter(pk=run_id, status=CrawlRun.Status.RUNNING)
    if owner:
        running = running.filter(owner=owner)
    return running.update(heartbeat_at=timezone.now()) > 0


RECRAWL_INTERVALS = {
    Source.Schedule.HOURLY: timedelta(hours=1),
    Source.Schedule.DAILY: timedelta(days=1),
    Source.Schedule.WEEKLY: timedelta(weeks=1),
}


def sources_due_for_recrawl(*, now=None) -> list[Source]:
    """Scheduled sources whose last crawl ended longer ago than their interval. A source saved without
    crawling waits for its first crawl to be asked for."""
    now = now or timezone.now()
    due = []
    for source in Source.objects.exclude(schedule=Source.Schedule.MANUAL).select_related("last_run"):
        run = source.last_run
        if run is None and not source.runs.exists():
            continue  # saved without crawling: a person starts its first crawl
        if run is not None and run.status == CrawlRun.Status.PAUSED:
            continue  # paused by a person: only a person resumes it
        if run is None or (
            not run.is_active and (run.finished_at or run.created_at) <= now - RECRAWL_INTERVALS[source.schedule]
        ):
            due.append(source)
    return due


# A crawl shows it is alive between pages (run_still_running); one that has not for this long is taken to
# have died with its worker: another delivery of its task may take the run over.
RUN_LEASE = timedelta(seconds=120)


def run_begin(*, run: CrawlRun, owner: str = "") -> bool:
    """Mark a run as started by ``owner`` (the task delivery's id); False when it is finished, has been tried
    too often, or another delivery is crawling it now (a duplicate delivery stays out while that one's
    heartbeat is fresh, and takes over once it is stale)."""
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().get(pk=run.pk)
        if not run.is_active:
            return False
        now = timezone.now()
        if (
            run.status == CrawlRun.Status.RUNNING
            and run.owner
            and run.owner != owner
            and run.heartbeat_at > now - RUN_LEASE
        ):
            return False
        run.owner, run.heartbeat_at = owner, now
        run.attempts += 1
        if run.attempts > MAX_ATTEMPTS:
            _run_fail(run, f"the crawl stopped its worker {MAX_ATTEMPTS} times; giving up")
            return False
        # A redelivered run starts over: pages already indexed are found unchanged and cost one request.
        run.status = CrawlRun.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.pages_found = run.pages_fetched = run.pages_failed = run.pages_skipped = run.pages_unchanged = 0
        run.report = {"failed": [], "skipped": []}
        run.save()
        Source.objects.filter(pk=run.source_id).update(status=Source.Status.RUNNING)
    return True


def run_requeue(*, run_id: int) -> None:
    """Put a run back in the queue after a temporary failure; that attempt does not count."""
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().get(pk=run_id)
        run.status = CrawlRun.Status.QUEUED
        run.attempts = max(0, run.attempts - 1)
        run.save(update_fields=["status", "attempts"])
        Source.objects.filter(pk=run.source_id).update(status=Source.Status.QUEUED)


def _report_add(run: CrawlRun, key: str, url: str, reason: str) -> None:
    entries = run.report.setdefault(key, [])
    if len(entries) < REPORT_LIMIT:
        entries.append({"url": url, "reason": reason})


def run_record_event(*, run: CrawlRun, event: CrawlEvent) -> None:
    """Count one crawl event; store the page as a document when it is new or changed.

    An ``unchanged`` event (the site answered 304) marks the stored document as seen in this run
    without touching its content, so that the end of the crawl keeps it.
    """
    run.pages_found = max(run.pages_found, event.found)
    if event.kind == "failed":
        run.pages_failed += 1
        _report_add(run, "failed", event.url, event.reason)
    elif event.kind == "skipped":
        run.pages_skipped += event.count
        _report_add(run, "skipped", event.url, event.reason)
    elif event.kind == "unchanged":
        run.pages_fetched += 1
        run.pages_unchanged += 1
        Document.objects.filter(source_id=run.source_id, url=event.url).update(last_run=run, fetched_at=timezone.now())
    else:
        run.pages_fetched += 1
        page = event.page
        sections = [section.as_dict() for section in page.sections]
        stored = document_store(
            run=run,
            url=event.url,
            title=page.title,
            sections=sections,
            etag=event.etag,
            last_modified=event.last_modified,
        )
        if not stored:
            run.pages_unchanged += 1
    run.save(
        update_fields=[
            "pages_found",
            "pages_fetched",
            "pages_failed",
            "pages_skipped",
            "pages_unchanged",
            "report",
        ]
    )


def source_known_pages(*, source: Source) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """What a recrawl starts from: the URLs of the source's documents (extra seeds of the crawl)
    and the ``(etag, last_modified)`` validators of those indexed, for conditional requests.

    Only indexed documents get validators: a 304 must not keep a failed or half-indexed page.
    """
    urls, validators = [], {}
    for url, status, etag, last_modified in source.documents.values_list("url", "status", "etag", "last_modified"):
        urls.append(url)
        if status == Document.Status.READY and (etag or last_modified):
            validators[url] = (etag, last_modified)
    return urls, validators


def run_crawl_finished(*, run: CrawlRun, stopped_early: bool = False) -> None:
    """The crawl has visited every page: drop pages gone from the site, then wait for indexing.

    A run paused or cancelled meanwhile did not visit every page: nothing is dropped.
    """
    with transaction.atomic():
        locked = CrawlRun.objects.select_for_update().filter(pk=run.pk, status=CrawlRun.Status.RUNNING).first()
        if locked is None:
            return
        if not stopped_early:
            Document.objects.filter(source_id=run.source_id).exclude(last_run=run).delete()
        # Every URL found was fetched, skipped or failed: the report's numbers add up (while it ran,
        # "found" counted the URLs seen, redirect targets and canonicals among them).
        CrawlRun.objects.filter(pk=run.pk).update(
            status=CrawlRun.Status.INDEXING,
            pages_found=F("pages_fetched") + F("pages_skipped") + F("pages_failed"),
        )
    run_finish_if_indexed(run_id=run.pk)


def run_finish_if_indexed(*, run_id: int) -> None:
    """Close the run once none of its documents waits for indexing."""
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != CrawlRun.Status.INDEXING:
            return
        documents = Document.objects.filter(last_run=run)
        if documents.filter(status=Document.Status.PENDING).exists():
            return
        run.chunks_embedded = sum(documents.values_list("chunk_count", flat=True))
        run.status = CrawlRun.Status.DONE
        run.finished_at = timezone.now()
        run.save()
        source = Source.objects.get(pk=run.source_id)
        if source.kind == Source.Kind.WEBSITE:
            failed_everything = run.pages_fetched == 0 and run.pages_failed > 0
            reason = "no page could be fetched: see the crawl report"
        else:  # files: one that fails fails alone (its reason at the document); the source fails with all
            failed_everything = (
                not source.documents.exclude(status=Document.Status.FAILED).exists() and source.documents.exists()
            )
            reason = "no file could be read: see each document's reason"
        Source.objects.filter(pk=run.source_id).update(
            status=Source.Status.FAILED if failed_everything else Source.Status.READY,
            error=reason if failed_everything else "",
        )
        assistant_id = Source.objects.filter(pk=run.source_id).values_list("assistant_id", flat=True).first()
    content_indexed.send(sender=CrawlRun, assistant_id=assistant_id)


def _run_fail(run: CrawlRun, reason: str) -> None:
    run.status = CrawlRun.Status.FAILED
    run.error = reason
    run.finished_at = timezone.now()
    run.save()
    source = Source.objects.get(pk=run.source_id)
    # A refused zip is one upload that failed: the files uploaded before it still answer.
    still_answers = (
        source.kind != Source.Kind.WEBSITE and source.documents.filter(status=Document.Status.READY).exists()
    )
    Source.objects.filter(pk=run.source_id).update(
        status=Source.Status.READY if still_answers else Source.Status.FAILED, error=reason
    )


def run_fail(*, run_id: int, reason: str) -> None:
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().get(pk=run_id)
        _run_fail(run, reason)
