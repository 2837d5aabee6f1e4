"""Dashboard pages of sources: progress while crawling, documents and the crawl report, and the
library of hand-written Q&A pairs, snippets and bulk imports."""

from pathlib import Path
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assistants import access, forms
from assistants.answering.playground import history_after, history_from, try_question
from assistants.web import visitors
from ingestion import selectors, services
from ingestion.models import Document, Source, view_token_document_id


@login_required
def source_detail(request, source_id: int):
    source = access.source_for(user=request.user, source_id=source_id)
    return render(
        request,
        "dashboard/source_detail.html",
        {
            "source": source,
            "assistant": source.assistant,
            "progress": selectors.source_progress(source=source),
            "documents": source.documents.order_by("url")[:500],
            "document_count": source.documents.count(),
            "options": forms.WebsiteSourceForm.initial_for(source),  # with the server's defaults
            "report": source.last_run.report if source.last_run else {},
        },
    )


@login_required
def source_progress(request, source_id: int):
    return JsonResponse(selectors.source_progress(source=access.source_for(user=request.user, source_id=source_id)))


@login_required
@require_POST
def source_crawl(request, source_id: int):
    source = access.source_for(user=request.user, source_id=source_id, write=True)
    services.source_crawl_start(source=source)
    return redirect("source_detail", source_id=source.pk)


@login_required
@require_POST
def source_run_control(request, source_id: str, action: str):
    """Pause, resume or cancel the source's crawl."""
    source = access.source_for(user=request.user, source_id=source_id, write=True)
    control = {"pause": services.run_pause, "resume": services.run_resume, "cancel": services.run_cancel}[action]
    try:
        control(source=source)
    except services.IngestionError as exc:
        messages.error(request, str(exc))
    return redirect("source_detail", source_id=source.pk)


@login_required
def source_edit(request, source_id: int):
    """A website source's address, scope (include / exclude patterns, the whole site or the address's
    folder), sitemap, caps, schedule and rendering; saved alone or saved and crawled."""
    write = request.method == "POST"
    source = access.source_for(user=request.user, source_id=source_id, write=write)
    if source.kind != Source.Kind.WEBSITE:
        raise Http404("Only a website source has settings")
    form = forms.WebsiteSourceForm(request.POST if write else None, initial=forms.WebsiteSourceForm.initial_for(source))
    if write and form.is_valid():
        try:
            services.source_update_website(source=source, **form.cleaned_data)
        except services.IngestionError as exc:
            form.add_error("url", str(exc))
    if write and form.is_valid():
        if request.POST.get("crawl") == "1":
            services.source_crawl_start(source=source)
            messages.success(request, "Saved; the crawl is queued with these settings.")
        else:
            messages.success(request, "Saved. The next crawl uses these settings.")
        return redirect("source_detail", source_id=source.pk)
    return render(
        request,
        "dashboard/source_edit.html",
        {"source": source, "assistant": source.assistant, "form": form},
        status=400 if write else 200,
    )


@login_required
@require_POST
def source_delete(request, source_id: int):
    """The source with its documents, once the confirmation box is ticked."""
    source = access.source_for(user=request.user, source_id=source_id, write=True)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm that its documents go too.")
        return redirect("source_detail", source_id=source.pk)
    count = services.source_delete(source=source)
    messages.success(request, f"Deleted {source} and its {count} document{'s' if count != 1 else ''}.")
    return redirect("assistant_detail", assistant_id=source.assistant_id)


@login_required
@require_GET
def assistant_documents(request, assistant_id: int):
    """Every document of the assistant, searchable by title, address or file name, filtered by status
    and source, a page at a time; with delete, reindex and retry for those who manage content."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    sources = list(assistant.sources.order_by("kind", "name"))
    query = request.GET.get("q", "").strip()[:200]
    status = request.GET.get("status", "")
    status = status if status in Document.Status.values else ""
    source_id = request.GET.get("source", "")
    source_id = int(source_id) if source_id.isdigit() and int(source_id) in {s.pk for s in sources} else None
    documents = selectors.documents_listing(assistant_id=assistant.pk, query=query, status=status, source_id=source_id)
    page = Paginator(documents, selectors.DOCUMENT_PAGE_SIZE).get_page(request.GET.get("page"))
    for document in page:
        document.type_label = selectors.document_type(document)
    return render(
        request,
        "dashboard/documents.html",
        {
            "assistant": assistant,
            "sources": sources,
            "page": page,
            "query": query,
            "status": status,
            "source_id": source_id,
            "statuses": Document.Status.choices,
            "filtered": bool(query or status or source_id),
            "counts": selectors.documents_counts(assistant_id=assistant.pk),
        },
    )


@login_required
@require_POST
def document_action(request, document_id: int, action: str):
    """Delete a document (its passages and file go too), or index it again: reindex (any document)
    and retry (a failed one) queue it anew; an upload is parsed again from its file."""
    document = access.document_for(user=request.user, document_id=document_id, write=True)
    label = document.title or document.url
    if action == "delete":
        services.document_delete(document=document)
        messages.success(request, f"Deleted “{label}”.")
    elif action == "retry" and document.status != Document.Status.FAILED:
        messages.error(request, f"“{label}” has not failed: reindex it instead.")
    elif not services.document_retryable(document):  # an upload refused for its size
        messages.error(request, f"“{label}” was never stored ({document.error}): upload a smaller file instead.")
    else:
        services.document_reindex(document=document)
        messages.success(request, f"“{label}” is queued to be indexed again.")
    back = request.POST.get("next", "")
    documents_url = reverse("assistant_documents", args=[document.source.assistant_id])
    if not back.startswith(documents_url) and back != reverse("source_detail", args=[document.source_id]):
        back = documents_url
    return redirect(back)


@login_required
@require_POST
def documents_retry_failed(request, assistant_id: int):
    """Index every failed document of the assistant again (those a retry can help)."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    count = services.documents_retry_failed(assistant_id=assistant.pk)
    messages.success(request, f"{count} failed document{'s are' if count != 1 else ' is'} queued to be indexed again.")
    return redirect("assistant_documents", assistant_id=assistant.pk)


@login_required
def assistant_playground(request, assistant_id: int):
    """The Test tab: a question asked as a visitor would ask it, answered with the passages it was made
    from (their lexical, dense and fused scores) and why it was or was not given; then follow-ups, each
    answered with the conversation so far, as the chat would. Nothing is stored: no conversation, no
    analytics; the conversation travels with the form, signed. Asking is for those who work
    conversations (members and above)."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    question, trial, error, history, carried = "", None, "", [], ""
    if request.method == "POST":
        if access.Permission.WORK not in assistant.viewer_can:
            raise PermissionDenied("Your role cannot ask questions here.")
        carried = request.POST.get("history", "")
        history = _trial_history(carried, assistant)
        question = request.POST.get("question", "").strip()
        if not question:
            error = "Type a question first."
        elif len(question) > MAX_TRIAL_QUESTION_CHARS:
            error = f"A question has at most {MAX_TRIAL_QUESTION_CHARS} characters."
        else:
            trial = async_to_sync(try_question)(assistant=assistant, question=question, history=history)
            carried = signing.dumps(
                {"assistant": assistant.pk, "turns": history_after(history, trial)}, salt=TRIAL_SALT, compress=True
            )
            question = ""  # the box is for the next question (the one asked shows above the answer)
    return render(
        request,
        "dashboard/playground.html",
        {
            "assistant": assistant,
            "question": question,
            "trial": trial,
            "error": error,
            "history": history,
            "carried": carried if (trial or history) else "",
        },
        status=400 if error else 200,
    )


TRIAL_SALT = "assistants.playground.history"


def _trial_history(carried: str, assistant) -> list:
    """The earlier turns of a trial conversation carried by the form: signed for this assistant, so the
    model is only ever shown what it answered here ([] for anything else)."""
    if not carried:
        return []
    try:
        data = signing.loads(carried, salt=TRIAL_SALT, max_age=TRIAL_MAX_AGE)
    except signing.BadSignature:
        return []
    if not isinstance(data, dict) or data.get("assistant") != assistant.pk:
        return []
    return history_from(data.get("turns"))


TRIAL_MAX_AGE = 24 * 3600  # seconds a trial conversation can be continued


MAX_TRIAL_QUESTION_CHARS = 2000


@login_required
def library(request, assistant_id: int):
    """Q&A pairs and snippets (added one by one or from a CSV) and a zip of documents."""
    if request.method == "POST":
        return _library_post(request, access.assistant_for(user=request.user, assistant_id=assistant_id, write=True))
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    source = Source.objects.filter(assistant=assistant, kind=Source.Kind.QA).first()
    entries = source.documents.order_by("-id")[:500] if source else []
    return render(request, "dashboard/library.html", {"assistant": assistant, "entries": entries})


def _library_post(request, assistant):
    action = request.POST.get("action")
    try:
        if action == "qa":
            services.qa_add(
                assistant=assistant, question=request.POST.get("question", ""), answer=request.POST.get("answer", "")
            )
            messages.success(request, "Added; it answers once indexed (a few seconds).")
        elif action == "csv" and "file" in request.FILES:
            added, errors = services.qa_import_csv(assistant=assistant, data=request.FILES["file"].read())
            messages.success(request, f"Imported {len(added)} Q&A pairs.")
            for error in errors[:20]:
                messages.error(request, error)
        elif action == "zip" and "file" in request.FILES:
            source = services.source_documents_get_or_create(assistant=assistant)
            services.documents_upload_zip(source=source, archive=request.FILES["file"])
            return redirect("source_detail", source_id=source.pk)
        elif action == "delete":
            document = Document.objects.filter(
                pk=request.POST.get("document_id") or 0, source__assistant=assistant, source__kind=Source.Kind.QA
            ).first()
            if document is None:
                raise Http404("No such entry")
            services.document_delete(document=document)
        else:
            messages.error(request, "Choose a file first.")
    except services.IngestionError as exc:
        messages.error(request, str(exc))
    return redirect("library", assistant_id=assistant.pk)


# Office files are shown as the text that was indexed, one part per slide, sheet block or section, so
# that a citation (``#slide=3``, ``#sheet=Prices&row=12``, ``#section=4``) opens the passage it quotes.
READABLE_VIEWS = {".docx": "Word document", ".pptx": "PowerPoint presentation", ".xlsx": "Excel workbook"}


def _readable_view(request, document: Document, kind: str) -> HttpResponse:
    """The extracted text of an Office file as a page (escaped: nothing in the file runs), each part
    under its heading and with its anchor as id, and a link that downloads the original."""
    parts = []
    for number, section in enumerate(document.sections, start=1):
        path = list(section.get("heading_path") or [])
        if path and path[0] == document.title:
            path = path[1:]
        parts.append(
            {
                "label": _part_label(section.get("anchor") or ""),
                "id": section.get("anchor") or f"part-{number}",
                "heading": " › ".join(path),
                "paragraphs": [
                    {"text": block, "table": block.lstrip().startswith("|")}
                    for block in section.get("text", "").split("\n\n")
                    if block.strip()
                ],
            }
        )
    response = render(
        request,
        "documents/readable.html",
        {
            "document": document,
            "kind": kind,
            "parts": parts,
            "download": f"{request.path}?download=1",
            "origin": document.url if document.added_by_url else "",
        },
    )
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _part_label(anchor: str) -> str:
    """“Slide 3”, “Prices, row 12” for a slide's or a sheet block's anchor; "" for a Word section."""
    from urllib.parse import parse_qs

    fields = {key: values[0] for key, values in parse_qs(anchor).items()}
    if "slide" in fields:
        return f"Slide {fields['slide']}"
    if "row" in fields:
        return f"{fields['sheet']}, row {fields['row']}" if "sheet" in fields else f"Row {fields['row']}"
    return ""


INLINE_TYPES = {
    ".pdf": "application/pdf",
    **dict.fromkeys((".txt", ".md", ".markdown", ".csv", ".vtt", ".srt"), "text/plain; charset=utf-8"),
}


@require_GET
def document_file(request, token: str, name: str):
    """An uploaded document, or an Office file added by its address, by the unguessable link its
    citations carry."""
    documents = Document.objects.select_related("source__assistant")
    document = documents.filter(public_token=token).exclude(public_token="").first()
    if document is None and (document_id := view_token_document_id(token)) is not None:
        # An Office file added by its address: cited as its readable page on the platform, by a token
        # signed from its id (ingestion.models.cited_url).
        document = documents.filter(pk=document_id).first()
        if document is None or document.cited_url == document.url:
            document = None
    if document is None:
        raise Http404("No such document")
    assistant = document.source.assistant
    if assistant.access_code_hash and not (
        visitors.access_granted(request, assistant)
        or (request.user.is_authenticated and assistant.team.memberships.filter(user=request.user).exists())
    ):
        # An internal assistant's documents open for its visitors (their pass) and its team, nobody else.
        unlock = reverse("access_unlock", args=[assistant.slug]) + "?" + urlencode({"next": request.path})
        return visitors.access_form(request, assistant=assistant, action=unlock)
    if document.added_by_url and not (
        document.file_path and (Path(settings.MEDIA_ROOT) / document.file_path).is_file() and document.sections
    ):
        # Being downloaded again (a reindex), or failed, since it was cited: the file at its own address.
        return redirect(document.url)
    if not document.file_path:  # a Q&A pair or a snippet: its text, as plain text
        body = "\n\n".join(
            "\n".join([" > ".join(section["heading_path"]), section["text"]]) for section in document.sections
        )
        response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["X-Content-Type-Options"] = "nosniff"
        return response
    path = Path(settings.MEDIA_ROOT) / document.file_path
    if not path.is_file():
        raise Http404("No such document")
    suffix = Path(document.file_name).suffix.lower()
    if suffix in READABLE_VIEWS and document.sections and request.GET.get("download") != "1":
        return _readable_view(request, document, READABLE_VIEWS[suffix])
    # Only formats a browser shows without running anything are shown inline (a PDF, text); every other
    # upload (.js, .html, .svg, Office files, ...) is a download of opaque bytes: nothing a team uploads can
    # run as a script or a page of the platform's origin.
    inline = INLINE_TYPES.get(Path(document.file_name).suffix.lower())
    response = FileResponse(
        path.open("rb"),
        content_type=inline or "application/octet-stream",
        filename=document.file_name,
        as_attachment=inline is None,
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; script-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    return response
