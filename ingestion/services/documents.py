"""Writes for one document: storing a fetched page, downloading and parsing a file, queueing its
indexing, reindexing, failing and deleting it."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ingestion.models import CrawlRun, Document, Source


def sections_hash(title: str, sections: list[dict]) -> str:
    payload = json.dumps([title, sections], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _safe_file_name(name: str) -> str:
    name = Path(name or "document").name.replace("\x00", "")
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^\w.\- ]+", "_", stem).strip(" ._")[:120] or "document"
    return stem + re.sub(r"[^a-z0-9.]", "", suffix)[:10]


def upload_folder(source_id: int) -> Path:
    """Where the source's files live (uploads, downloads, transcripts): every file of its documents."""
    return Path(settings.MEDIA_ROOT) / "uploads" / str(int(source_id))


def _upload_storage(source: Source) -> Path:
    storage = upload_folder(source.pk)
    storage.mkdir(parents=True, exist_ok=True)
    return storage


def document_needs_preparing(document: Document) -> bool:
    """A file not parsed yet (parsing sets its content hash, even when it finds no text): an upload,
    or a document added by address and not downloaded yet."""
    return (document.added_by_url and not document.file_path) or (
        bool(document.file_path) and not document.content_hash
    )


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
    from ingestion.crawling import youtube

    return document.added_by_url and youtube.video_id(document.url) is not None


def document_download(*, document: Document) -> str:
    """Download a document added by URL into the uploads storage; its Content-Type, for the parser.
    ParseError (the task fails the document with it) when the address cannot be read."""
    from chatsite.lib import http
    from ingestion.parsers import ParseError

    if document_is_video(document):
        return _video_download(document)
    try:
        result = http.fetch_or_fail(
            document.url,
            subject="the document",
            max_bytes=settings.UPLOAD_MAX_BYTES,
            deadline=settings.OUTBOUND_DOWNLOAD_DEADLINE,
        )
    except http.FetchFailed as exc:
        raise ParseError(exc.reason) from exc
    if result.status_code != 200:
        raise ParseError(f"the address answered HTTP {result.status_code}")
    _store_download(document, result.content)
    return result.headers.get("content-type", "")


def _video_download(document: Document) -> str:
    """A video's transcript, stored as a WebVTT file titled with the video's title; the caption track
    it was read from noted on the document."""
    from ingestion.crawling import youtube

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
    content_hash = sections_hash(document.title, sections)
    changed = {}
    if content_hash != document.content_hash:
        previous = Document.objects.filter(pk=document.pk).values_list("content_hash", "indexed_hash").first()
        if previous is None or content_hash not in previous:  # parsed again with the same content: unchanged
            changed["content_changed_at"] = document.content_changed_at = timezone.now()
    document.content_hash = content_hash
    Document.objects.filter(pk=document.pk).update(
        title=document.title,
        sections=sections,
        warnings=document.warnings,
        content_hash=document.content_hash,
        **changed,
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
        if document.content_hash != content_hash:  # first stored, or its content changed
            document.content_changed_at = document.fetched_at
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


def document_delete(*, document: Document) -> None:
    """The document, its chunks in every space (the table's foreign key cascades) and its stored file
    (``ingestion.signals``)."""
    document.delete()


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


def document_retryable(document: Document) -> bool:
    """Whether indexing a failed document again can help: not an upload refused for its size (it was
    never stored; only a smaller file can take its place)."""
    return not (document.public_token and document.file_name and not document.file_path)


def documents_retry_failed(*, assistant_id: int) -> int:
    """Queue every failed document of the assistant that can be retried; how many were."""
    failed = Document.objects.filter(source__assistant_id=assistant_id, status=Document.Status.FAILED)
    count = 0
    for document in failed.defer("sections"):
        if document_retryable(document):
            document_reindex(document=document)
            count += 1
    return count
