"""Writes that add content to an assistant: website sources, uploads (one by one or a zip),
documents and videos by address, Q&A pairs and snippets (one by one or from a CSV)."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ingestion.models import CrawlRun, Document, Source
from ingestion.services.documents import _safe_file_name, _upload_storage, document_queue, sections_hash
from ingestion.services.errors import IngestionError
from ingestion.services.runs import documents_run, run_fail, run_finish_if_indexed

if TYPE_CHECKING:
    from assistants.models import Assistant


def _website_settings(
    *,
    max_pages: int | None,
    max_depth: int | None,
    render_javascript: bool,
    include: list[str] | tuple[str, ...],
    exclude: list[str] | tuple[str, ...],
    sitemap_url: str,
    whole_site: bool,
    extra_hosts: list[str] | tuple[str, ...] = (),
) -> dict:
    """A website source's ``settings`` (read by the crawl task into ``CrawlLimits``); options left at
    their default are left out."""
    return {
        "max_pages": max_pages or settings.CRAWL_MAX_PAGES,
        "max_depth": settings.CRAWL_MAX_DEPTH if max_depth is None else max_depth,
        **({"render_javascript": True} if render_javascript else {}),  # off unless asked for
        **({"include": list(include)} if include else {}),
        **({"exclude": list(exclude)} if exclude else {}),
        **({"sitemap_url": sitemap_url} if sitemap_url else {}),
        **({"whole_site": True} if whole_site else {}),
        **({"extra_hosts": list(extra_hosts)} if extra_hosts else {}),
    }


def _crawlable(url: str) -> None:
    from chatsite.lib import http as outbound

    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise IngestionError(f"That address cannot be crawled: {exc.reason}.") from None


def source_create_website(
    *,
    assistant: Assistant,
    url: str,
    max_pages: int | None = None,
    max_depth: int | None = None,
    schedule: str = Source.Schedule.MANUAL,
    render_javascript: bool = False,
    include: list[str] | tuple[str, ...] = (),
    exclude: list[str] | tuple[str, ...] = (),
    sitemap_url: str = "",
    whole_site: bool = False,
) -> Source:
    """A website source (not crawled yet: :func:`source_crawl_start` queues its crawl). By default its
    crawl stays under the address's folder (``whole_site`` lifts that); ``include`` / ``exclude`` are
    globs on path and query (see ``ingestion.crawling.crawler.CrawlLimits``)."""
    _crawlable(url)
    return Source.objects.create(
        assistant=assistant,
        kind=Source.Kind.WEBSITE,
        schedule=schedule or Source.Schedule.MANUAL,
        url=url,
        name=url,
        settings=_website_settings(
            max_pages=max_pages,
            max_depth=max_depth,
            render_javascript=render_javascript,
            include=include,
            exclude=exclude,
            sitemap_url=sitemap_url,
            whole_site=whole_site,
        ),
    )


def source_update_website(
    *,
    source: Source,
    url: str,
    max_pages: int | None = None,
    max_depth: int | None = None,
    schedule: str = Source.Schedule.MANUAL,
    render_javascript: bool = False,
    include: list[str] | tuple[str, ...] = (),
    exclude: list[str] | tuple[str, ...] = (),
    sitemap_url: str = "",
    whole_site: bool = False,
) -> Source:
    """Change a website source's address, scope, caps and schedule (the arguments of
    :func:`source_create_website`). The next crawl uses them; its end drops the pages it no longer
    reaches. A crawl under way keeps the settings it started with."""
    if source.kind != Source.Kind.WEBSITE:
        raise IngestionError("Only a website source has these settings.")
    _crawlable(url)
    name = url if source.name in ("", source.url) else source.name
    source.url, source.name, source.schedule = url, name, schedule or Source.Schedule.MANUAL
    source.settings = _website_settings(
        max_pages=max_pages,
        max_depth=max_depth,
        render_javascript=render_javascript,
        include=include,
        exclude=exclude,
        sitemap_url=sitemap_url,
        whole_site=whole_site,
        extra_hosts=source.settings.get("extra_hosts") or (),  # set by the API's callers only; kept
    )
    source.save(update_fields=["url", "name", "schedule", "settings"])
    return source


def source_delete(*, source: Source) -> int:
    """The source, its crawls, its documents and their chunks and files (``ingestion.signals``); a
    crawl under way stops at its next page (its run is gone). The number of documents deleted."""
    count = source.documents.count()
    source.delete()
    return count


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
            source=source,
            url=f"{settings.SITE_URL}/d/{token}/qa.txt",
            title=question[:500],
            public_token=token,
            sections=sections,
            content_hash=sections_hash(question, sections),
            fetched_at=timezone.now(),
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

    The web process never opens the archive beyond its end-of-directory record (is it a zip at all?): it
    stores it as it came, streamed to disk, and queues its unpacking by :func:`archive_unpack` in a
    sandboxed child on the ``ingest`` queue, where the zip-bomb checks run before anything is extracted.
    The run is "running" until then; a refused archive fails it with the reason."""
    import zipfile

    if not zipfile.is_zipfile(archive):
        raise IngestionError("The file is not a zip archive, or it is damaged.")
    archive.seek(0)
    stored = _upload_storage(source) / f"import-{uuid.uuid4().hex}.zip"
    with stored.open("wb") as out:
        for piece in archive.chunks() if hasattr(archive, "chunks") else iter(lambda: archive.read(1 << 20), b""):
            out.write(piece)
    from ingestion.tasks import archive_unpack_task

    with transaction.atomic():
        run = CrawlRun.objects.create(
            source=source,
            status=CrawlRun.Status.RUNNING,
            attempts=1,
            started_at=timezone.now(),
            report={"archive": str(stored.relative_to(settings.MEDIA_ROOT))},
        )
        Source.objects.filter(pk=source.pk).update(last_run=run, status=Source.Status.RUNNING, error="")
        archive_unpack_task.delay_on_commit(run.pk)
    return run


def archive_unpack(*, run_id: int) -> None:
    """Unpack a stored zip (the task's body) into the uploads storage, in a sandboxed child with memory,
    CPU and time limits, then add its files as documents of the run (each queued for parsing; a file over
    the size limit fails alone) and wait for their indexing. Idempotent: a run no longer running is left
    alone, and a redelivered task unpacks again into a fresh folder."""
    import shutil

    from ingestion.parsers import ParseError, unpack_archive

    run = CrawlRun.objects.select_related("source").filter(pk=run_id, status=CrawlRun.Status.RUNNING).first()
    if run is None or "archive" not in run.report:
        return
    archive = Path(settings.MEDIA_ROOT) / run.report["archive"]
    folder = _upload_storage(run.source) / f"unpacked-{run.pk}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        files = unpack_archive(
            archive,
            folder,
            max_files=ZIP_MAX_FILES,
            max_member_bytes=settings.UPLOAD_MAX_BYTES,
            max_total_bytes=ZIP_MAX_FILES * settings.UPLOAD_MAX_BYTES,
            time_limit=settings.PARSE_TIME_LIMIT,
            memory_limit_mb=settings.PARSE_MEMORY_LIMIT_MB,
        )
    except ParseError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        archive.unlink(missing_ok=True)
        run_fail(run_id=run.pk, reason=f"the zip was refused: {exc.reason}")
        return
    with transaction.atomic():
        run = CrawlRun.objects.select_for_update().filter(pk=run_id, status=CrawlRun.Status.RUNNING).first()
        if run is None:
            return
        run.pages_found = len(files)
        for item in files:
            stored = folder / item["stored"] if "stored" in item else None
            _document_upload(run=run, name=item["name"], stored=stored)
        run.status = CrawlRun.Status.INDEXING
        run.report = {}
        run.save(update_fields=["pages_found", "pages_fetched", "pages_failed", "status", "report"])
        transaction.on_commit(lambda: archive.unlink(missing_ok=True))
    run_finish_if_indexed(run_id=run.pk)


def documents_upload(*, source: Source, files) -> CrawlRun:
    """Store uploaded files under generated names and queue each for parsing and indexing.

    A file over the size limit fails on its own, with its reason; the others go on.
    """
    storage = _upload_storage(source)
    with transaction.atomic():
        run = documents_run(source=source, count=len(files))
        for upload in files:
            stored = None
            if upload.size <= settings.UPLOAD_MAX_BYTES:
                stored = storage / f"{uuid.uuid4().hex}{Path(_safe_file_name(upload.name)).suffix}"
                with stored.open("wb") as out:
                    for piece in upload.chunks():
                        out.write(piece)
            _document_upload(run=run, name=upload.name, stored=stored)
        run.save(update_fields=["pages_failed", "pages_fetched"])
    run_finish_if_indexed(run_id=run.pk)
    return run


def _document_upload(*, run: CrawlRun, name: str, stored: Path | None) -> Document:
    """A document of ``run`` for an uploaded file stored at ``stored`` (queued for parsing), or failed for
    its size when it was too large to store (None); counted on the run."""
    name = _safe_file_name(name)
    token = secrets.token_urlsafe(24)
    document = Document(
        source_id=run.source_id,
        url=f"{settings.SITE_URL}/d/{token}/{quote(name)}",
        title=name,
        file_name=name,
        public_token=token,
        last_run=run,
        fetched_at=timezone.now(),
    )
    if stored is None:
        document.status = Document.Status.FAILED
        document.error = f"the file is larger than the {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB limit"
        document.save()
        run.pages_failed += 1
        return document
    document.file_path = str(stored.relative_to(settings.MEDIA_ROOT))
    document.save()
    run.pages_fetched += 1
    document_queue(document=document)
    return document


def document_add_url(*, assistant: Assistant, url: str) -> Document:
    """A document (PDF, DOCX, spreadsheet, …) that the worker downloads from its address through the
    SSRF-safe client, then parses and indexes like an upload; citations open that address (a PDF's
    with ``#page=N``). Adding the same address again downloads it anew.

    A YouTube video's address adds its transcript (``ingestion.crawling.youtube``): the worker fetches the
    captions as a subtitle file, and citations open the video at the moment they quote."""
    from ingestion.crawling import youtube

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
        run = documents_run(source=source, count=1)
        previous = Document.objects.filter(source=source, url=url).values_list("file_path", flat=True).first()
        document, _ = Document.objects.update_or_create(
            source=source,
            url=url,
            defaults={
                "title": title,
                "file_name": name,
                "file_path": "",
                "public_token": "",
                "sections": [],
                "warnings": [],
                "status": Document.Status.PENDING,
                "attempts": 0,
                "error": "",
                "indexed_hash": "",
                "last_run": run,
                "claimed_by": None,
            },
        )
        CrawlRun.objects.filter(pk=run.pk).update(pages_fetched=1)
        if previous:
            old = Path(settings.MEDIA_ROOT) / previous
            transaction.on_commit(lambda: old.unlink(missing_ok=True))
        document_queue(document=document)
    return document
