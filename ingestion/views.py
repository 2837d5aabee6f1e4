"""Dashboard pages of sources: progress while crawling, documents and the crawl report."""
from django.contrib.auth.decorators import login_required
import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ingestion import selectors, services
from ingestion.models import Document, Source


def _source_for_user(user, source_id: int) -> Source:
    source = (
        Source.objects.select_related("assistant", "last_run")
        .filter(pk=source_id, assistant__team__memberships__user=user)
        .first()
    )
    if source is None:
        raise Http404("No such source")
    return source


@login_required
def source_detail(request, source_id: int):
    source = _source_for_user(request.user, source_id)
    return render(
        request,
        "dashboard/source_detail.html",
        {
            "source": source,
            "assistant": source.assistant,
            "progress": selectors.source_progress(source=source),
            "documents": source.documents.order_by("url")[:500],
            "report": source.last_run.report if source.last_run else {},
        },
    )


@login_required
def source_progress(request, source_id: int):
    return JsonResponse(selectors.source_progress(source=_source_for_user(request.user, source_id)))


@login_required
@require_POST
def source_crawl(request, source_id: int):
    source = _source_for_user(request.user, source_id)
    services.source_crawl_start(source=source)
    return redirect("source_detail", source_id=source.pk)


@require_GET
def document_file(request, token: str, name: str):
    """An uploaded document, by the unguessable link its citations carry."""
    document = Document.objects.filter(public_token=token).exclude(public_token="").exclude(file_path="").first()
    if document is None:
        raise Http404("No such document")
    path = Path(settings.MEDIA_ROOT) / document.file_path
    if not path.is_file():
        raise Http404("No such document")
    content_type = mimetypes.guess_type(document.file_name)[0] or "application/octet-stream"
    if content_type.startswith("text/html") or "xml" in content_type or "svg" in content_type:
        content_type = "text/plain"  # never let an upload run as a page of the platform
    response = FileResponse(path.open("rb"), content_type=content_type, filename=document.file_name)
    response["Content-Disposition"] = response["Content-Disposition"].replace("attachment", "inline")
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    return response
