"""Reads over sources and documents for the dashboard and the API (retrieval is ``ingestion.search``)."""

from __future__ import annotations

from django.db.models import Case, Count, Q, QuerySet, Sum, When
from django.db.models.functions import Lower

from ingestion.models import Document, Source


def source_progress(*, source: Source) -> dict:
    """What the source page shows while a crawl runs, and after."""
    run = source.last_run
    documents = Document.objects.filter(source=source).aggregate(
        total=Count("id"),
        ready=Count("id", filter=Q(status=Document.Status.READY)),
        pending=Count("id", filter=Q(status=Document.Status.PENDING)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
        chunks=Sum("chunk_count", filter=Q(status=Document.Status.READY)),
    )
    return {
        "status": source.status,
        "status_label": source.get_status_display(),
        "error": source.error,
        "run": None
        if run is None
        else {
            "id": run.pk,
            "status": run.status,
            "pages_found": run.pages_found,
            "pages_fetched": run.pages_fetched,
            "pages_failed": run.pages_failed,
            "pages_skipped": run.pages_skipped,
            "pages_unchanged": run.pages_unchanged,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "report": run.report,
        },
        "documents": {key: value or 0 for key, value in documents.items()},
    }


DOCUMENT_PAGE_SIZE = 50


def documents_listing(
    *, assistant_id: int, query: str = "", status: str = "", source_id: int | None = None
) -> QuerySet[Document]:
    """The assistant's documents (pages, files, Q&A pairs) for the dashboard's list: those whose title,
    address or file name holds ``query``, of ``status`` and ``source_id`` when given; failed first, then
    by title."""
    documents = (
        Document.objects.filter(source__assistant_id=assistant_id)
        .select_related("source")
        .defer("sections", "content_hash", "indexed_hash", "etag", "last_modified")
    )
    if query.strip():
        words = query.split()
        for word in words[:8]:
            documents = documents.filter(
                Q(title__icontains=word) | Q(url__icontains=word) | Q(file_name__icontains=word)
            )
    if status:
        documents = documents.filter(status=status)
    if source_id:
        documents = documents.filter(source_id=source_id)
    return documents.order_by(Case(When(status=Document.Status.FAILED, then=0), default=1), Lower("title"), "url", "id")


def document_type(document: Document) -> str:
    """What a document is, in a word or two: "Web page", "PDF", "Word", "Q&A", "Video", ..."""
    from pathlib import PurePosixPath

    if document.source.kind == Source.Kind.QA:
        return "Q&A"
    if document.file_name.startswith("youtube-") and document.file_name.endswith(".vtt") and document.added_by_url:
        return "Video"
    suffix = PurePosixPath(document.file_name).suffix.lower().lstrip(".")
    if not document.file_name:
        return "Web page"
    return FILE_TYPES.get(suffix, suffix.upper() or "File")


FILE_TYPES = {
    "pdf": "PDF",
    "docx": "Word",
    "pptx": "PowerPoint",
    "xlsx": "Excel",
    "csv": "CSV",
    "md": "Markdown",
    "markdown": "Markdown",
    "html": "HTML",
    "htm": "HTML",
    "txt": "Text",
    "vtt": "Subtitles",
    "srt": "Subtitles",
}


def documents_counts(*, assistant_id: int) -> dict:
    """How many of the assistant's documents are indexed, waiting and failed, and their passages."""
    counts = Document.objects.filter(source__assistant_id=assistant_id).aggregate(
        total=Count("id"),
        ready=Count("id", filter=Q(status=Document.Status.READY)),
        pending=Count("id", filter=Q(status=Document.Status.PENDING)),
        failed=Count("id", filter=Q(status=Document.Status.FAILED)),
        chunks=Sum("chunk_count", filter=Q(status=Document.Status.READY)),
    )
    return {key: value or 0 for key, value in counts.items()}
