"""The dashboard: server-rendered pages for teams, assistants, sources and conversations."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from assistants import access, forms, selectors, services
from assistants.domains import verification as domains
from assistants.web import navigation
from assistants.web.install import checklist
from ingestion import services as ingestion_services
from ingestion.spaces import lexical_status


def signup(request):
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, _ = services.user_signup(**form.cleaned_data)
        login(request, user)
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})


def _dashboard_page(request, *, team_form=None, status=200):
    team = navigation.current_team(request)
    return render(
        request,
        "dashboard/index.html",
        {
            "team": team,
            "can_manage": bool(team) and access.Permission.MANAGE in access.permissions(team.viewer_role),
            "assistants": selectors.assistants_for_user(user=request.user).filter(team=team) if team else [],
            "team_form": team_form or forms.TeamForm(),
            "lexical": lexical_status() if request.user.is_staff else None,  # the deployment, for its staff
        },
        status=status,
    )


@login_required
def dashboard(request):
    """The current team's assistants (the team switcher changes it), and a form for a new team."""
    return _dashboard_page(request)


@login_required
@require_POST
def team_create(request):
    form = forms.TeamForm(request.POST)
    if not form.is_valid():
        return _dashboard_page(request, team_form=form, status=400)
    team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
    navigation.remember_team(request, team)
    return redirect("dashboard")


@login_required
def assistant_create(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.MANAGE)
    form = forms.AssistantBrandingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields, access_code = form.split()
        assistant = services.assistant_create(team=team, access=access_code, **fields)
        return redirect("assistant_start", assistant_id=assistant.pk)  # its website, straight away
    return render(request, "dashboard/assistant_form.html", {"form": form, "team": team})


def _assistant_page(request, assistant, *, source_form=None, status=200):
    return render(
        request,
        "dashboard/assistant_detail.html",
        {
            "assistant": assistant,
            "sources": assistant.sources.select_related("last_run").order_by("-created_at"),
            "conversations": selectors.conversation_log(conversations=assistant.conversations.all())[:5],
            "source_form": source_form or forms.WebsiteSourceForm(),
            "domains": selectors.domains_for_assistant(assistant=assistant),
            "domain_form": forms.CustomDomainForm(),
            "dns_available": domains.dns_available(),
            "challenge_path": domains.CHALLENGE_PATH,
            "dns_prefix": domains.DNS_PREFIX,
            "checklist": checklist(assistant=assistant),
        },
        status=status,
    )


@login_required
def assistant_detail(request, assistant_id: int):
    return _assistant_page(request, access.assistant_for(user=request.user, assistant_id=assistant_id))


@login_required
@require_POST
def domain_add(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.CustomDomainForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["host"]))
    elif selectors.domain_host_taken(host=form.cleaned_data["host"], assistant=assistant):
        messages.error(request, "That host is already in use.")
    else:
        domain = services.custom_domain_add(assistant=assistant, host=form.cleaned_data["host"])
        messages.success(request, f"Added {domain.host}: publish its verification token, then press Verify.")
    return redirect("assistant_detail", assistant_id=assistant.pk)


@login_required
@require_POST
def domain_verify(request, domain_id: int):
    domain = services.custom_domain_verify(domain=access.domain_for(user=request.user, domain_id=domain_id, write=True))
    if domain.last_check_error:
        messages.error(request, f"{domain.host} is not verified: {domain.last_check_error}")
    else:
        messages.success(request, f"{domain.host} is verified.")
    return redirect("assistant_detail", assistant_id=domain.assistant_id)


@login_required
@require_POST
def domain_delete(request, domain_id: int):
    domain = access.domain_for(user=request.user, domain_id=domain_id, write=True)
    services.custom_domain_delete(domain=domain)
    messages.success(request, f"Removed {domain.host}.")
    return redirect("assistant_detail", assistant_id=domain.assistant_id)


@require_GET
def domain_check(request):
    """Caddy's on-demand TLS ``ask``: 200 only for a verified custom domain, so that no certificate is
    requested for any other name pointed at the server."""
    try:
        host = domains.normalize_host(request.GET.get("domain", ""))
    except ValueError:
        return HttpResponse("unknown", status=404, content_type="text/plain")
    if selectors.verified_domain(host=host) is None:
        return HttpResponse("unknown", status=404, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@login_required
@require_POST
def source_add(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.WebsiteSourceForm(request.POST)
    if form.is_valid():
        try:
            source = ingestion_services.source_create_website(assistant=assistant, **form.cleaned_data)
        except ingestion_services.IngestionError as exc:
            form.add_error("url", str(exc))
    if not form.is_valid():  # the page again, as typed, with the error at its field
        return _assistant_page(request, assistant, source_form=form, status=400)
    if request.POST.get("crawl", "1") == "1":
        ingestion_services.source_crawl_start(source=source)
    else:
        messages.success(request, "Saved without crawling: press Crawl now when you are ready.")
    return redirect("source_detail", source_id=source.pk)


@login_required
@require_POST
def documents_upload(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Choose one or more files to upload.")
        return redirect("assistant_detail", assistant_id=assistant.pk)
    source = ingestion_services.source_documents_get_or_create(assistant=assistant)
    ingestion_services.documents_upload(source=source, files=files)
    return redirect("source_detail", source_id=source.pk)


@login_required
@require_POST
def document_add_url(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    try:
        document = ingestion_services.document_add_url(assistant=assistant, url=request.POST.get("url", ""))
    except ingestion_services.IngestionError as exc:
        messages.error(request, str(exc))
        return redirect("assistant_detail", assistant_id=assistant.pk)
    return redirect("source_detail", source_id=document.source_id)
