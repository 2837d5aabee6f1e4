"""Writes for sources, crawl runs, documents and chunks. Views, tasks and commands call these."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast, Length
from django.utils import timezone

from assistants.models import Assistant
from ingestion.chunking import chunk_sections
from ingestion.crawler import CrawlEvent
from ingestion.models import CrawlRun, Document, EmbeddingSpace, Source
from ingestion.spaces import (
    space_active,
    space_create,
    space_drop,
    spaces_for_indexing,
    vector_index_if_due,
    vector_literal,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a document or crawl that kills its worker this often ends failed
REPORT_LIMIT = 200  # failed/skipped URLs kept in a crawl report


class IngestionError(Exception):
    """A problem the user can act on, in one sentence."""


def sections_hash(title: str, sections: list[dict]) -> str:
    payload = json.dumps([title, sections], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def source_create_website(
    *, assistant: Assistant, url: str, max_pages: int | None = None, max_depth: int | None = None,
    schedule: str = Source.Schedule.MANUAL, render_javascript: bool = False,
) -> Source:
    from chatsite.lib import http as outbound

    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise IngestionError(f"That address cannot be crawled: {exc.reason}.") from None
    return Source.objects.create(
        assistant=assistant,
        kind=Source.Kind.WEBSITE,
        schedule=schedule,
        url=url,
        name=url,
        settings={
            "max_pages": max_pages or settings.CRAWL_MAX_PAGES,
            "max_depth": settings.CRAWL_MAX_DEPTH if max_depth is None else max_depth,
            **({"render_javascript": True} if render_javascript else {}),  # off unless asked for
        },
    )


def source_documents_get_or_create(*, assistant: Assistant) -> Source:
    """The assistant's source for uploaded documents (one per assistant)."""
    source, _ = Source.objects.get_or_create(
        assistant=assistant, kind=Source.Kind.DOCUMENT, defaults={"name": "Uploaded documents"}
    )
    return source


QA_IMPORT_MAX_ROWS = 5000
QA_MAX_CHARS = 20_000  # of one answer or snippet
ZIP_MAX_FILES = 200


def source_qa_get_or_create(*, assistant: Assistant) -> Source:
    """The assistant's source for hand-written Q&A pairs and text snippets (one per assistant)."""
    source, _ = Source.objects.get_or_create(
        assistant=assistant, kind=Source.Kind.QA, defaults={"name": "Q&A and snippets", "status": Source.Status.READY}
    )
    return source


def qa_add(*, assistant: Assistant, question: str, answer: str) -> Document:
    """A Q&A pair (or, with the question as a title, a text snippet), queued for indexing.

    It is cited like a page: its link (``/d/<token>/``) shows the question and the answer as text.
    """
    question, answer = " ".join(question.split()), answer.strip()
    if not question or not answer:
        raise IngestionError("Both the question (or title) and the answer (or text) are needed.")
    if len(question) > 500 or len(answer) > QA_MAX_CHARS:
        raise IngestionError(f"The question is limited to 500 characters and the answer to {QA_MAX_CHARS}.")
    source = source_qa_get_or_create(assistant=assistant)
    sections = [{"heading_path": [question], "text": answer, "anchor": ""}]
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        document = Document.objects.create(
            source=source, url=f"{settings.SITE_URL}/d/{token}/qa.txt", title=question[:500], public_token=token,
            sections=sections, content_hash=sections_hash(question, sections), fetched_at=timezone.now(),
        )
        document_queue(document=document)
    return document


def qa_import_csv(*, assistant: Assistant, data: bytes) -> tuple[list[Document], list[str]]:
    """Q&A pairs from a CSV with ``question`` and ``answer`` columns (any order, any case; other
    columns ignored). Returns the documents added and one error per row that was refused."""
    import csv
    import io

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestionError("The CSV is not UTF-8 text.") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = [name.strip().lower() for name in next(rows, [])]
    if "question" not in header or "answer" not in header:
        raise IngestionError("The CSV needs a header row with 'question' and 'answer' columns.")
    q_column, a_column = header.index("question"), header.index("answer")
    added, errors = [], []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(added) + len(errors) >= QA_IMPORT_MAX_ROWS:
            errors.append(f"row {line} and after: more than {QA_IMPORT_MAX_ROWS} rows; not imported")
            break
        cells = row + [""] * (max(q_column, a_column) + 1 - len(row))
        try:
            added.append(qa_add(assistant=assistant, question=cells[q_column], answer=cells[a_column]))
        except IngestionError as exc:
            errors.append(f"row {line}: {exc}")
    return added, errors


def documents_upload_zip(*, source: Source, archive) -> CrawlRun:
    """Every file of a zip, uploaded as if one by one (folders flattened, hidden files skipped).

    Checked before anything is extracted: members, total expanded size and compression ratios are
    capped (a zip bomb is refused whole); a member's path is never used as a path (only its last
    part names the upload), and members under hidden folders or with ``..`` in their path are skipped.
    """
    import zipfile

    from django.core.files.base import ContentFile

    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise IngestionError("The file is not a zip archive, or it is damaged.") from None
    with zf:
        members = [
            m for m in zf.infolist()
            if not m.is_dir() and not any(part.startswith((".", "__MACOSX")) for part in m.filename.split("/"))
        ]
        if not members:
            raise IngestionError("The zip archive holds no files.")
        if len(members) > ZIP_MAX_FILES:
            raise IngestionError(f"The zip archive holds more than {ZIP_MAX_FILES} files.")
        if sum(m.file_size for m in members) > ZIP_MAX_FILES * settings.UPLOAD_MAX_BYTES:
            raise IngestionError("The zip archive expands to more than its limit.")
        for member in members:
            if member.file_size > 10 * 1024 * 1024 and member.file_size > 100 * max(member.compress_size, 1):
                raise IngestionError(f"{member.filename} is compressed more than 100 times (zip bomb?).")
        files = []
        for member in members:
            if member.file_size > settings.UPLOAD_MAX_BYTES:
                # Not read: documents_upload fails it on its size, with its reason.
                files.append(_Oversize(Path(member.filename).name, member.file_size))
                continue
            with zf.open(member) as handle:
                content = handle.read(settings.UPLOAD_MAX_BYTES + 1)
            files.append(ContentFile(content, name=Path(member.filename).name))
    return documents_upload(source=source, files=files)


class _Oversize:
    """Stands for a zip member too large to extract: it has a name and a size, nothing else."""

    def __init__(self, name: str, size: int):
        self.name, self.size = name, size


def _safe_file_name(name: str) -> str:
    name = Path(name or "document").name.replace("\x00", "")
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^\w.\- ]+", "_", stem).strip(" ._")[:120] or "document"
    return stem + re.sub(r"[^a-z0-9.]", "", suffix)[:10]


def _upload_storage(source: Source) -> Path:
    storage = Path(settings.MEDIA_ROOT) / "uploads" / str(source.pk)
    storage.mkdir(parents=True, exist_ok=True)
    return storage


def _documents_run(source: Source, count: int) -> CrawlRun:
    """A run of a documents source: it is done when none of its documents waits for indexing."""
    run = CrawlRun.objects.create(
        source=source, status=CrawlRun.Status.INDEXING, attempts=1, started_at=timezone.now(), pages_found=count
    )
    Source.objects.filter(pk=source.pk).update(last_run=run, status=Source.Status.RUNNING, error="")
    return run


def documents_upload(*, source: Source, files) -> CrawlRun:
    """Store uploaded files under generated names and queue each for parsing and indexing.

    A file over the size limit fails on its own, with its reason; the others go on.
    """
    storage = _upload_storage(source)
    with transaction.atomic():
        run = _documents_run(source, len(files))
        for upload in files:
            name = _safe_file_name(upload.name)
            token = secrets.token_urlsafe(24)
            document = Document(
                source=source, url=f"{settings.SITE_URL}/d/{token}/{quote(name)}", title=name,
                file_name=name, public_token=token, last_run=run, fetched_at=timezone.now(),
            )
            if upload.size > settings.UPLOAD_MAX_BYTES:
                document.status = Document.Status.FAILED
                document.error = f"the file is larger than the {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB limit"
                run.pages_failed += 1
                document.save()
                continue
            path = storage / f"{uuid.uuid4().hex}{Path(name).suffix}"
            with path.open("wb") as out:
                for piece in upload.chunks():
                    out.write(piece)
            document.file_path = str(path.relative_to(settings.MEDIA_ROOT))
            document.save()
            run.pages_fetched += 1
            document_queue(document=document)
        run.save(update_fields=["pages_failed", "pages_fetched"])
    run_finish_if_indexed(run_id=run.pk)
    return run


def document_add_url(*, assistant: Assistant, url: str) -> Document:
    """A document (PDF, DOCX, spreadsheet, …) that the worker downloads from its address through the
    SSRF-safe client, then parses and indexes like an upload; citations open that address (a PDF's
    with ``#page=N``). Adding the same address again downloads it anew.

    A YouTube video's address adds its transcript (``ingestion.youtube``): the worker fetches the
    captions as a subtitle file, and citations open the video at the moment they quote."""
    from ingestion import youtube

    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise IngestionError("Enter the http or https address of a document.")
    video = youtube.video_id(url)
    if video:  # one document per video, whatever form of its address was given; cited on YouTube
        url, name, title = youtube.WATCH_URL.format(video_id=video), f"youtube-{video}.vtt", f"YouTube video {video}"
    else:
        name = title = _safe_file_name(unquote(PurePosixPath(parts.path).name) or parts.hostname)
    source = source_documents_get_or_create(assistant=assistant)
    with transaction.atomic():
        run = _documents_run(source, 1)
        previous = Document.objects.filter(source=source, url=url).values_list("file_path", flat=True).first()
        document, _ = Document.objects.update_or_create(
            source=source,
            url=url,
            defaults={
                "title": title, "file_name": name, "file_path": "", "public_token": "", "sections": [], "warnings": [],
                "status": Document.Status.PENDING, "attempts": 0, "error": "", "indexed_hash": "", "last_run": run,
                "claimed_by": None,
            },
        )
        CrawlRun.objects.filter(pk=run.pk).update(pages_fetched=1)
        if previous:
            old = Path(settings.MEDIA_ROOT) / previous
            transaction.on_commit(lambda: old.unlink(missing_ok=True))
        document_queue(document=document)
    return document


def document_needs_preparing(document: Document) -> bool:
    """A file not parsed yet (parsing sets its content hash, even when it finds no text): an upload,
    or a document added by address and not downloaded yet."""
    return (document.added_by_url and not document.file_path) or (bool(document.file_path) and not document.content_hash)


def document_queue(*, document: Document) -> None:
    """Queue a pending document's next step when the transaction commits: a file is downloaded and
    parsed first on the ``ingest`` queue (CPU work, beside the crawls), which then queues its
    chunking and embedding on the ``embed`` queue; text (pages, Q&A) goes straight to ``embed``.
    So an embedding worker (a GPU one) only embeds, while other workers parse the next files."""
    from ingestion.tasks import document_index_task, document_prepare_task

    task = document_prepare_task if document_needs_preparing(document) else document_index_task
    task.delay_on_commit(document.pk)


def document_prepare(*, document_id: int) -> Document | None:
    """Download and parse a pending document that needs it (ParseError says why not); the document,
    or None when it is no longer pending (deleted, failed, or indexed by an earlier delivery)."""
    document = Document.objects.filter(pk=document_id, status=Document.Status.PENDING).first()
    if document is None:
        return None
    if document.added_by_url and not document.file_path:
        document_parse(document=document, content_type=document_download(document=document))
    elif document_needs_preparing(document):
        document_parse(document=document)
    return document


def document_is_video(document: Document) -> bool:
    """A YouTube video added by its address: indexed from its transcript."""
    from ingestion import youtube

    return document.added_by_url and youtube.video_id(document.url) is not None


def document_download(*, document: Document) -> str:
    """Download a document added by URL into the uploads storage; its Content-Type, for the parser.
    ParseError (the task fails the document with it) when the address cannot be read."""
    from chatsite.lib import http
    from ingestion.parsers import ParseError

    if document_is_video(document):
        return _video_download(document)
    try:
        result = http.fetch_or_fail(document.url, subject="the document", max_bytes=settings.UPLOAD_MAX_BYTES)
    except http.FetchFailed as exc:
        raise ParseError(exc.reason) from exc
    if result.status_code != 200:
        raise ParseError(f"the address answered HTTP {result.status_code}")
    _store_download(document, result.content)
    return result.headers.get("content-type", "")


def _video_download(document: Document) -> str:
    """A video's transcript, stored as a WebVTT file titled with the video's title; the caption track
    it was read from noted on the document."""
    from ingestion import youtube

    language = Source.objects.filter(pk=document.source_id).values_list("assistant__language", flat=True).get()
    transcript = youtube.fetch_transcript(youtube.video_id(document.url), languages=(language,) if language else ())
    document.warnings = transcript.notes
    Document.objects.filter(pk=document.pk).update(warnings=document.warnings)
    _store_download(document, transcript.webvtt().encode())
    return "text/vtt"


def _store_download(document: Document, content: bytes) -> None:
    path = _upload_storage(document.source) / f"{uuid.uuid4().hex}{Path(document.file_name).suffix}"
    path.write_bytes(content)
    document.file_path = str(path.relative_to(settings.MEDIA_ROOT))
    document.fetched_at = timezone.now()
    Document.objects.filter(pk=document.pk).update(file_path=document.file_path, fetched_at=document.fetched_at)


def document_parse(*, document: Document, content_type: str = "") -> None:
    """Parse a stored file into sections (in a sandboxed child process); ParseError says why not."""
    from ingestion.parsers import parse_file

    parsed = parse_file(
        Path(settings.MEDIA_ROOT) / document.file_path,
        filename=document.file_name,
        content_type=content_type,
        time_limit=settings.PARSE_TIME_LIMIT,
        memory_limit_mb=settings.PARSE_MEMORY_LIMIT_MB,
        max_bytes=settings.UPLOAD_MAX_BYTES,
    )
    sections = [section.as_dict() for section in parsed.sections]
    document.title = (parsed.title or document.file_name)[:500]
    # A video's note (which caption track it was read from) came with its download.
    document.warnings = [*document.warnings, *parsed.warnings] if document_is_video(document) else parsed.warnings
    document.sections = sections
    document.content_hash = sections_hash(document.title, sections)
    Document.objects.filter(pk=document.pk).update(
        title=document.title, sections=sections, warnings=document.warnings, content_hash=document.content_hash
    )


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


def run_still_running(*, run_id: int) -> bool:
    """What the crawl task asks between pages: False once the run was paused or cancelled."""
    return CrawlRun.objects.filter(pk=run_id, status=CrawlRun.Status.RUNNING).exists()


RECRAWL_INTERVALS = {
    Source.Schedule.HOURLY: timedelta(hours=1),
    Source.Schedule.DAILY: timedelta(days=1),
    Source.Schedule.WEEKLY: timedelta(weeks=1),
}


def sources_due_for_recrawl(*, now=None) -> list[Source]:
    """Scheduled sources whose last crawl ended longer ago than their interval."""
    now = now or timezone.now()
    due = []
    for source in Source.objects.exclude(schedule=Source.Schedule.MANUAL).select_related("last_run"):
        run = source.last_run
        if run is not None and run.status == CrawlRun.Status.PAUSED:
            continue  # paused by a person: only a person resumes it
        if run is None or (not run.is_active and (run.finished_at or run.created_at) <= now - RECRAWL_INTERVALS[source.schedule]):
            due.append(source)
    return due


def run_begin(*, run: CrawlRun) -> bool:
    """Mark a run as started; False when it is finished or has been tried too often."""
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().get(pk=run.pk)
        if not run.is_active:
            return False
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
            run=run, url=event.url, title=page.title, sections=sections,
            etag=event.etag, last_modified=event.last_modified,
        )
        if not stored:
            run.pages_unchanged += 1
    run.save(
        update_fields=[
            "pages_found", "pages_fetched", "pages_failed", "pages_skipped", "pages_unchanged", "report",
        ]
    )


def document_store(
    *, run: CrawlRun, url: str, title: str, sections: list[dict], etag: str = "", last_modified: str = ""
) -> bool:
    """Save a fetched document and its HTTP validators; queue its indexing when its content changed.

    True when queued.
    """
    content_hash = sections_hash(title, sections)
    with transaction.atomic():
        document, _ = Document.objects.select_for_update().get_or_create(source_id=run.source_id, url=url)
        document.last_run = run
        document.fetched_at = timezone.now()
        document.etag = etag[:200]
        document.last_modified = last_modified[:100]
        # Unchanged: indexed with this content already, or queued for indexing with it (a resumed or
        # redelivered crawl meets the pages it stored before; their indexing task is on its way).
        unchanged = document.content_hash == content_hash and (
            (document.status == Document.Status.READY and document.indexed_hash == content_hash)
            or document.status == Document.Status.PENDING
        )
        if not unchanged:
            document.title = title[:500]
            document.sections = sections
            document.content_hash = content_hash
            document.status = Document.Status.PENDING
            document.error = ""
            document.attempts = 0
            document.claimed_by = None  # a batch that holds its old content leaves it to the new task
        document.save()
        if not unchanged:
            document_queue(document=document)
    return not unchanged


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
        CrawlRun.objects.filter(pk=run.pk).update(status=CrawlRun.Status.INDEXING)
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
        failed_everything = run.pages_fetched == 0 and run.pages_failed > 0
        Source.objects.filter(pk=run.source_id).update(
            status=Source.Status.FAILED if failed_everything else Source.Status.READY,
            error="no page could be fetched: see the crawl report" if failed_everything else "",
        )


def _run_fail(run: CrawlRun, reason: str) -> None:
    run.status = CrawlRun.Status.FAILED
    run.error = reason
    run.finished_at = timezone.now()
    run.save()
    Source.objects.filter(pk=run.source_id).update(status=Source.Status.FAILED, error=reason)


def run_fail(*, run_id: int, reason: str) -> None:
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().get(pk=run_id)
        _run_fail(run, reason)


# An indexing task embeds its document together with others of the same assistant that wait for it
# (one embedding call instead of one per document: a GPU gets batches worth running, a CPU fewer
# small ones), up to this many documents and characters of text.
BATCH_MAX_DOCUMENTS = 32
BATCH_MAX_CHARS = 400_000


@dataclass
class IndexBatch:
    """The documents an indexing task embeds (see :func:`documents_index_claim`)."""

    leader: int  # the document whose task claimed them
    documents: list[Document]
    one_by_one: bool = False  # an earlier delivery of the task stopped: each document on its own attempt


def _held_by(document_id: int):
    """Documents that the indexing task of ``document_id`` claimed and that still wait (it stopped)."""
    return Document.objects.filter(claimed_by=document_id, status=Document.Status.PENDING)


def documents_held_by(*, document_id: int) -> bool:
    """Whether the indexing task of ``document_id`` holds documents from an earlier delivery (read without a lock)."""
    return _held_by(document_id).exists()


def documents_index_claim(*, document_id: int) -> IndexBatch | None:
    """What the indexing task of ``document_id`` embeds; None when there is nothing for it to do.

    On the task's first delivery: the document and other pending, parsed documents of its assistant
    that no task holds, each marked ``claimed_by`` this document and counted an attempt — their own
    tasks then find them held and do nothing. A document held by another task's batch is left to that
    task (and to its redelivery). A delivery that finds documents it claimed still pending comes after
    one that stopped (a killed worker): it takes them one by one, each on its own attempt, so a document
    that kills the worker ends failed alone.
    """
    with transaction.atomic():
        held = list(_held_by(document_id).select_for_update().order_by("pk"))
        if held:  # (even when the task's own document was deleted since)
            return IndexBatch(leader=document_id, documents=held, one_by_one=True)
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.status != Document.Status.PENDING or document.claimed_by is not None:
            return None
        assistant_id = Source.objects.filter(pk=document.source_id).values_list("assistant_id", flat=True).get()
        waiting = (
            Document.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(source__assistant_id=assistant_id, status=Document.Status.PENDING, claimed_by__isnull=True)
            .exclude(pk=document_id)
            .exclude(file_name__gt="", public_token="", file_path="")  # added by address, not downloaded yet
            .exclude(~Q(file_path=""), content_hash="")  # a file not parsed yet
            .annotate(size=Length(Cast("sections", TextField())))
            .order_by("pk")[: BATCH_MAX_DOCUMENTS - 1]
        )
        batch, size = [document], len(json.dumps(document.sections))
        for other in waiting:
            if size + other.size <= BATCH_MAX_CHARS:  # a document too large to join is left to its own task
                batch.append(other)
                size += other.size
        claimed = []
        for member in batch:
            member.claimed_by = document_id
            if _attempt_counted(member):
                claimed.append(member)
        Document.objects.bulk_update(batch, ["claimed_by", "attempts", "status", "error"])
    return IndexBatch(leader=document_id, documents=claimed) if claimed else None


def _attempt_counted(document: Document) -> bool:
    """Count an indexing attempt; False (and the document failed) once it has stopped its worker too often."""
    document.attempts += 1
    if document.attempts > MAX_ATTEMPTS:
        document.status = Document.Status.FAILED
        document.error = f"indexing stopped its worker {MAX_ATTEMPTS} times; giving up"
        return False
    return True


def documents_index_batch(*, batch: IndexBatch) -> None:
    """Index a claimed batch. When indexing the documents together fails, each is indexed alone, so
    only the documents that fail on their own are failed, with their reason."""
    if not batch.one_by_one:
        try:
            documents_index(documents=batch.documents)
            return
        except Exception:
            logger.exception("indexing %d documents together failed; indexing them one by one", len(batch.documents))
    for document in batch.documents:
        with transaction.atomic():
            locked = Document.objects.select_for_update().filter(
                pk=document.pk, status=Document.Status.PENDING, claimed_by=batch.leader
            ).first()
            if locked is None:
                continue
            if batch.one_by_one:
                counted = _attempt_counted(locked)
                locked.save(update_fields=["attempts", "status", "error"])
                if not counted:
                    continue
        try:
            documents_index(documents=[locked])
        except Exception as exc:
            logger.exception("indexing document %s failed", document.pk)
            document_fail(document_id=document.pk, reason=f"indexing failed: {exc}")


def document_index(*, document: Document) -> int:
    """Chunk and embed one document into every live space of its assistant; chunks written."""
    return documents_index(documents=[document])[document.pk]


def documents_index(*, documents: list[Document]) -> dict[int, int]:
    """Chunk and embed documents of one assistant into every live space of it, their new chunk texts in
    one embedding call per space; then mark each ready. Chunks written, by document.

    Each document's old chunks are replaced in one transaction per space, so retrieval sees the old
    version or the new one, never half; a document whose content changed meanwhile (a recrawl) is
    left to the task its new content queued.
    """
    if not documents:
        return {}
    assistant_id = Source.objects.filter(pk=documents[0].source_id).values_list("assistant_id", flat=True).get()
    written = dict.fromkeys((document.pk for document in documents), 0)
    for space in spaces_for_indexing(assistant_id):
        written.update(documents_index_into_space(documents=documents, space=space))
    now = timezone.now()
    with transaction.atomic():
        for document in documents:
            Document.objects.filter(pk=document.pk, content_hash=document.content_hash).update(
                status=Document.Status.READY,
                indexed_hash=document.content_hash,
                chunk_count=written[document.pk],
                error="" if written[document.pk] else "no text to index",
                claimed_by=None,
                updated_at=now,
            )
    return written


def documents_index_into_space(*, documents: list[Document], space: EmbeddingSpace) -> dict[int, int]:
    """Replace the documents' chunks in one space; texts in the embedding cache are not embedded again."""
    from ingestion.embedding import get_embedder

    embedder = get_embedder(space.model_name)
    drafts = {
        document.pk: chunk_sections(document.sections, count_tokens=embedder.count_tokens, max_tokens=settings.CHUNK_MAX_TOKENS)
        for document in documents
    }
    texts = [draft.search_text for document in documents for draft in drafts[document.pk]]
    vectors = iter(embeddings_cached(model_name=space.model_name, texts=texts, embedder=embedder))
    written = {}
    for document in documents:
        rows = [
            (
                space.pk, document.pk, draft.ordinal, draft.text, draft.search_text,
                json.dumps(draft.heading_path), draft.anchor[:300], draft.token_count, next(vectors),
            )
            for draft in drafts[document.pk]
        ]
        written[document.pk] = _chunks_replace(document=document, space=space, rows=rows)
    vector_index_if_due(space)
    return written


def _chunks_replace(*, document: Document, space: EmbeddingSpace, rows: list[tuple]) -> int:
    """Put ``rows`` in place of the document's chunks in ``space``, unless it was deleted or its content
    changed since it was chunked (it is locked meanwhile)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("select content_hash from ingestion_document where id = %s for update", [document.pk])
        current = cursor.fetchone()
        if current is None or current[0] != document.content_hash:
            return 0
        cursor.execute("delete from ingestion_chunk where space_id = %s and document_id = %s", [space.pk, document.pk])
        # COPY: a third less time than a batch of inserts for a document's rows (psycopg's own cursor)
        with cursor.cursor.copy(
            "copy ingestion_chunk (space_id, document_id, ordinal, text, search_text, heading_path, anchor,"
            " token_count, embedding) from stdin"
        ) as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


def space_switch_start(*, assistant: Assistant, model_name: str) -> EmbeddingSpace:
    """Start re-embedding an assistant's chunks with another model, in a new space built in the
    background; answers keep using the active space until the new one is complete."""
    from ingestion.embedding import embedding_dims
    from ingestion.tasks import space_build_task

    active = space_active(assistant.pk)
    if active and active.model_name == model_name:
        return active
    for building in EmbeddingSpace.objects.filter(assistant=assistant, status=EmbeddingSpace.Status.BUILDING):
        if building.model_name == model_name:
            return building
        space_drop(space=building)
    dims = embedding_dims(model_name)  # fails here, with its reason, for a model we cannot read
    with transaction.atomic():
        space = space_create(assistant=assistant, model_name=model_name, dims=dims, active=False)
        space_build_task.delay_on_commit(space.pk)
    return space


def space_build(*, space: EmbeddingSpace) -> None:
    """Embed every indexed document of the assistant into ``space``, then make it the active one.

    Documents indexed while this runs go into both spaces (``spaces_for_indexing``), so nothing is
    missing when the space flips.
    """
    documents = Document.objects.filter(source__assistant_id=space.assistant_id, status=Document.Status.READY)
    group: list[Document] = []
    for document in documents.order_by("pk").iterator():
        group.append(document)
        if len(group) == BATCH_MAX_DOCUMENTS:
            documents_index_into_space(documents=group, space=space)
            group = []
    documents_index_into_space(documents=group, space=space)
    space_activate(space=space)


def space_activate(*, space: EmbeddingSpace) -> None:
    """Flip the assistant to ``space`` in one transaction, then drop the spaces it replaces."""
    with transaction.atomic():
        space = EmbeddingSpace.objects.select_for_update().get(pk=space.pk)
        if space.status != EmbeddingSpace.Status.BUILDING:
            return
        retired = list(EmbeddingSpace.objects.filter(assistant_id=space.assistant_id, status=EmbeddingSpace.Status.ACTIVE))
        EmbeddingSpace.objects.filter(pk__in=[old.pk for old in retired]).update(status=EmbeddingSpace.Status.RETIRED)
        space.status = EmbeddingSpace.Status.ACTIVE
        space.save(update_fields=["status"])
        Assistant.objects.filter(pk=space.assistant_id).update(embedding_model=space.model_name)
    for old in retired:
        space_drop(space=old)


def embeddings_cached(*, model_name: str, texts: list[str], embedder) -> list[str]:
    """Vectors (as pgvector literals) for ``texts``: from the cache, the rest embedded and cached."""
    hashes = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    with connection.cursor() as cursor:
        cursor.execute(
            "select text_hash, embedding::text from ingestion_embeddingcache where model_name = %s and text_hash = any(%s)",
            [model_name, list(set(hashes))],
        )
        known = dict(cursor.fetchall())
    todo = list(dict.fromkeys(h for h in hashes if h not in known))
    if todo:
        first_text = {h: text for h, text in zip(reversed(hashes), reversed(texts))}
        vectors = embedder.embed_documents([first_text[h] for h in todo], batch_tokens=settings.EMBEDDING_BATCH_TOKENS)
        fresh = {h: vector_literal(vector) for h, vector in zip(todo, vectors)}
        with connection.cursor() as cursor:
            cursor.executemany(
                "insert into ingestion_embeddingcache (model_name, text_hash, embedding, created_at)"
                " values (%s, %s, %s::vector, now()) on conflict (model_name, text_hash) do nothing",
                [(model_name, h, vector) for h, vector in fresh.items()],
            )
        known.update(fresh)
    return [known[h] for h in hashes]


def document_delete(*, document: Document) -> None:
    """The document, its chunks in every space (the table's foreign key cascades) and its stored file."""
    path = Path(settings.MEDIA_ROOT) / document.file_path if document.file_path else None
    with transaction.atomic():
        document.delete()
        if path is not None:
            transaction.on_commit(lambda: path.unlink(missing_ok=True))


def document_reindex(*, document: Document) -> None:
    """Queue the document to be indexed again: an upload is parsed again from its file, a web page
    is chunked and embedded again from its stored text (a crawl fetches pages anew). Its chunks
    answer until the new ones replace them."""
    fields = {"status": Document.Status.PENDING, "attempts": 0, "error": "", "indexed_hash": "", "claimed_by": None}
    if document.file_path or document.added_by_url:
        fields.update(sections=[], content_hash="")  # so it is parsed again
    if document.added_by_url:
        fields["file_path"] = ""  # ... and downloads a document added by URL anew
        if document.file_path:
            old = Path(settings.MEDIA_ROOT) / document.file_path
            transaction.on_commit(lambda: old.unlink(missing_ok=True))
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(**fields, updated_at=timezone.now())
        for name, value in fields.items():
            setattr(document, name, value)
        document_queue(document=document)


def document_fail(*, document_id: int, reason: str) -> None:
    Document.objects.filter(pk=document_id).update(status=Document.Status.FAILED, error=reason[:1000])
