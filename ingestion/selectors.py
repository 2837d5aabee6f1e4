"""Reads over sources and documents for the dashboard and the API (retrieval is ``ingestion.search``)."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

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
