"""The dashboard: server-rendered pages for teams, assistants, sources and conversations."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from assistants import access, forms, selectors, services
from assistants.domains import verification as domains
from assistants.web.install import checklist
from ingestion import services as ingestion_services

NEW_KEY_SESSION = "new_api_key"  # the raw key of a key just created, shown once


def signup(request):
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, _ = services.user_signup(**form.cleaned_data)
        login(request, user)
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def dashboard(request):
    teams = selectors.teams_for_user(user=request.user)
    return render(
        request,
        "dashboard/index.html",
        {
            "teams": teams,
            "assistants": selectors.assistants_for_user(user=request.user),
            "team_form": forms.TeamForm(),
        },
    )


@login_required
@require_POST
def team_create(request):
    form = forms.TeamForm(request.POST)
    if form.is_valid():
        services.team_create(name=form.cleaned_data["name"], owner=request.user)
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


@login_required
def assistant_detail(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    return render(
        request,
        "dashboard/assistant_detail.html",
        {
            "assistant": assistant,
            "sources": assistant.sources.select_related("last_run").order_by("-created_at"),
            "conversations": assistant.conversations.order_by("-updated_at")[:20],
            "source_form": forms.WebsiteSourceForm(),
            "spaces": assistant.spaces.exclude(status="retired").order_by("id"),
            "domains": selectors.domains_for_assistant(assistant=assistant),
            "domain_form": forms.CustomDomainForm(),
            "dns_available": domains.dns_available(),
            "challenge_path": domains.CHALLENGE_PATH,
            "dns_prefix": domains.DNS_PREFIX,
            "checklist": checklist(assistant=assistant),
        },
    )


@login_required
def assistant_edit(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.AssistantBrandingForm(request.POST or None, instance=assistant)
    if request.method == "POST" and form.is_valid():
        fields, access_code = form.split()
        services.assistant_update(assistant=assistant, access=access_code, **fields)
        messages.success(request, "Saved.")
        return redirect("assistant_detail", assistant_id=assistant.pk)
    return render(
        request, "dashboard/assistant_form.html", {"form": form, "team": assistant.team, "assistant": assistant}
    )


@login_required
@require_POST
def domain_add(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.CustomDomainForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["host"]))
    elif selectors.domain_host_taken(host=form.cleaned_data["host"]):
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
    if not form.is_valid():
        messages.error(request, "Enter a valid website address.")
        return redirect("assistant_detail", assistant_id=assistant.pk)
    try:
        source = ingestion_services.source_create_website(assistant=assistant, **form.cleaned_data)
    except ingestion_services.IngestionError as exc:
        messages.error(request, str(exc))
        return redirect("assistant_detail", assistant_id=assistant.pk)
    ingestion_services.source_crawl_start(source=source)
    return redirect("source_detail", source_id=source.pk)


@login_required
@require_POST
def assistant_embedding_switch(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    model_name = request.POST.get("model_name", "").strip()
    if not model_name:
        messages.error(request, "Name an embedding model.")
        return redirect("assistant_detail", assistant_id=assistant.pk)
    try:
        space = ingestion_services.space_switch_start(assistant=assistant, model_name=model_name)
    except (OSError, ValueError) as exc:
        messages.error(request, f"That model cannot be used: {exc}")
    else:
        if space.status == space.Status.BUILDING:
            messages.success(
                request, f"Re-embedding with {model_name}; answers use the current model until it is done."
            )
    return redirect("assistant_detail", assistant_id=assistant.pk)


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


@login_required
def conversation_detail(request, conversation_id: int):
    conversation = access.conversation_for(user=request.user, conversation_id=conversation_id)
    return render(
        request,
        "dashboard/conversation_detail.html",
        {
            "conversation": conversation,
            "assistant": conversation.assistant,
            "messages_list": conversation.messages.all(),
        },
    )


@login_required
def team_api_keys(request, team_id: int):
    """The team's API keys: every member sees them (by prefix); owners and admins create and revoke
    them. A new key is shown once, on the page the creation redirects to (a reload shows it no more)."""
    from assistants.api.keys import api_key_create, api_key_revoke

    if request.method == "POST":
        team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.MANAGE)
        form = forms.ApiKeyForm(request.POST)
        if "revoke" in request.POST:
            key = team.api_keys.filter(pk=request.POST.get("revoke") or 0, revoked_at__isnull=True).first()
            if key:
                api_key_revoke(key=key)
                messages.success(request, f"Key {key.name} revoked.")
            return redirect("team_api_keys", team_id=team.pk)
        if form.is_valid():
            _, raw_key = api_key_create(team=team, **form.cleaned_data)
            request.session[NEW_KEY_SESSION] = raw_key
            return redirect("team_api_keys", team_id=team.pk)
    else:
        team = access.team_for(user=request.user, team_id=team_id)
        form = forms.ApiKeyForm()
    return render(
        request,
        "dashboard/api_keys.html",
        {
            "team": team,
            "keys": team.api_keys.order_by("-created_at"),
            "form": form,
            "new_key": request.session.pop(NEW_KEY_SESSION, None) if request.method == "GET" else None,
            "can_manage": access.Permission.MANAGE in team.viewer_can,
        },
    )
