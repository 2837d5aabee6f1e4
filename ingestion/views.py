"""Dashboard pages of sources: progress while crawling, documents and the crawl report."""
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ingestion import selectors, services
from ingestion.models import Source


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
