"""Getting an assistant onto a website: the first steps after creating it (its website, trying it,
installing it: a checklist that ticks itself from the assistant's real state) and the Install page
(the widget snippet, the full-page link, an inline iframe, and the allowed domains beside them)."""

from html import escape

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET

from assistants import access, forms, selectors, services
from ingestion import services as ingestion_services


def ago(moment) -> str:
    """ "just now", or "5 minutes ago"."""
    return "just now" if (timezone.now() - moment).total_seconds() < 60 else f"{timesince(moment)} ago"


def checklist(*, assistant) -> dict:
    """The getting-started steps with their state and a line saying where each stands (shown by the
    templates and sent to static/js/onboarding.js alike, so the words live here only)."""
    state = selectors.onboarding_steps(assistant=assistant)
    indexed, pending = state["indexed"], state["pending"]
    if state["content"]:
        content = f"{indexed} page{'s' if indexed != 1 else ''} indexed" + (f", {pending} waiting." if pending else ".")
    elif state["crawling"] or pending:
        content = f"Reading your content… {indexed} pages indexed so far."
    elif state["has_sources"]:
        content = "No page indexed yet: open the source below to see what happened."
    else:
        content = "Tell us your website, or upload documents, so that the assistant answers from them."
    if state["installed"]:
        installed = f"Seen on {state['seen_origin'] or 'your site'} {ago(assistant.widget_seen_at)}."
    else:
        installed = "Add the snippet to your site's pages; this ticks when the widget first loads there."
    steps = [
        {"key": "content", "title": "Add your content", "done": state["content"], "detail": content},
        {
            "key": "tried",
            "title": "Try it",
            "done": state["tried"],
            "detail": "It has had its first conversation."
            if state["tried"]
            else "Ask it something on its own page, as a visitor would.",
        },
        {"key": "installed", "title": "Install it on your site", "done": state["installed"], "detail": installed},
    ]
    current = next((step["key"] for step in steps if not step["done"]), None)
    return {
        "steps": steps,
        "current": current,
        "complete": current is None,
        "done": state["done"],
        "has_sources": state["has_sources"],
    }


def _platform(request) -> str:
    """The address the team reaches the platform under, which their site's visitors will load from."""
    return request.build_absolute_uri("/").rstrip("/")


def snippets(*, platform: str, assistant) -> dict:
    """What the Install page offers to copy; the assistant's name is escaped for an HTML attribute."""
    embed = f"{platform}{reverse('embed_page', args=[assistant.public_key])}"
    return {
        "widget": f'<script src="{platform}{reverse("widget_js")}" data-assistant="{assistant.public_key}" async></script>',
        "page": f"{platform}{reverse('assistant_page', args=[assistant.slug])}",
        "iframe": (
            f'<iframe title="{escape(assistant.name)}" loading="lazy"\n'
            'style="width: 100%; max-width: 420px; height: 600px; border: 0"\n'
            f'src="{embed}"></iframe>'
        ),
    }


@login_required
def assistant_install(request, assistant_id: int):
    write = request.method == "POST"
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=write)
    form = forms.AllowedDomainsForm(request.POST or None, assistant=assistant)
    if write and form.is_valid():
        services.assistant_update(assistant=assistant, allowed_domains=form.cleaned_data["allowed_domains"])
        count = len(assistant.allowed_domains)
        messages.success(
            request,
            f"Saved: the widget may show on {count} site{'s' if count != 1 else ''}."
            if count
            else "Saved: no site may show the widget now.",
        )
        return redirect("assistant_install", assistant_id=assistant.pk)
    return render(
        request,
        "dashboard/install.html",
        {
            "assistant": assistant,
            "form": form,
            "snippets": snippets(platform=_platform(request), assistant=assistant),
            "verified_domains": selectors.domains_for_assistant(assistant=assistant).filter(verified_at__isnull=False),
            "seen": selectors.onboarding_steps(assistant=assistant),
            "seen_ago": ago(assistant.widget_seen_at) if assistant.widget_seen_at else "",
        },
        status=400 if write else 200,
    )


@login_required
def assistant_start(request, assistant_id: int):
    """Asked straight after creating an assistant: its website first, then try it, then install it."""
    write = request.method == "POST"
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=write)
    form = forms.WebsiteStartForm(request.POST or None)
    if write and form.is_valid():
        try:
            source = ingestion_services.source_create_website(assistant=assistant, url=form.cleaned_data["url"])
        except ingestion_services.IngestionError as exc:
            form.add_error("url", str(exc))
        else:
            ingestion_services.source_crawl_start(source=source)
            messages.success(request, f"Reading {source.url}: the first step ticks itself when pages are indexed.")
            return redirect("assistant_start", assistant_id=assistant.pk)
    return render(
        request,
        "dashboard/assistant_start.html",
        {
            "assistant": assistant,
            "form": form,
            "checklist": checklist(assistant=assistant),
            "sources": selectors.sources_recent(assistant=assistant),
            "page_url": reverse("assistant_page", args=[assistant.slug]),
        },
        status=400 if write else 200,
    )


@login_required
@require_GET
def assistant_start_progress(request, assistant_id: int):
    """The checklist's state, polled by static/js/onboarding.js until every step is done."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    state = checklist(assistant=assistant)
    # ... and the sources listed under it, so that their status moves with the steps.
    state["sources"] = [
        {
            "id": source.pk,
            "status": source.status,
            "label": source.get_status_display(),
            "pages": source.last_run.pages_fetched if source.last_run and source.last_run.pages_fetched else "–",
        }
        for source in selectors.sources_recent(assistant=assistant)
    ]
    return JsonResponse(state)
