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
from ingestion.services.runs import documents_run, run_finish_if_indexed

if TYPE_CHECKING:
    from assistants.models import Assistant


def source_create_website(
    *,
    assistant: Assistant,
    url: str,
    max_pages: int | None = None,
    max_depth: int | None = None,
    schedule: str = Source.Schedule.MANUAL,
    render_javascript: bool = False,
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
            m
            for m in zf.infolist()
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


def documents_upload(*, source: Source, files) -> CrawlRun:
    """Store uploaded files under generated names and queue each for parsing and indexing.

    A file over the size limit fails on its own, with its reason; the others go on.
    """
    storage = _upload_storage(source)
    with transaction.atomic():
        run = documents_run(source=source, count=len(files))
        for upload in files:
            name = _safe_file_name(upload.name)
            token = secrets.token_urlsafe(24)
            document = Document(
                source=source,
                url=f"{settings.SITE_URL}/d/{token}/{quote(name)}",
                title=name,
                file_name=name,
                public_token=token,
                last_run=run,
                fetched_at=timezone.now(),
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
