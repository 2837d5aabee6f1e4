"""An assistant's settings, in sections: Branding, Behaviour, Model (with the embedding model
switch), Access, Lead capture, and the Danger zone (deleting the assistant). Every role reads them; owners and
admins change them. A section with a mistake comes back as typed, the error at its field."""

import copy

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from assistants import access, forms, selectors, services
from assistants.leads import services as lead_services
from assistants.leads.forms import LeadCaptureSettingsForm
from assistants.models import LeadCapture
from ingestion import services as ingestion_services


def _page(request, assistant, section: str, *, form=None, switch_form=None, delete_form=None, status=200):
    title, summary, _ = forms.SETTINGS_SECTIONS[section]
    can_manage = access.Permission.MANAGE in assistant.viewer_can
    if form is None and section == "leads":
        form = LeadCaptureSettingsForm(capture=LeadCapture.objects.filter(assistant=assistant).first())
    if form is None and section != "danger":
        form = forms.AssistantSettingsForm(instance=copy.copy(assistant), section=section)
    if section == "model" and switch_form is None:
        switch_form = forms.EmbeddingSwitchForm()
    if section == "danger" and delete_form is None:
        delete_form = forms.AssistantDeleteForm(assistant=assistant)
    return render(
        request,
        "dashboard/assistant_settings.html",
        {
            "assistant": assistant,
            "team": assistant.team,
            "section": section,
            "sections": [(key, value[0]) for key, value in forms.SETTINGS_SECTIONS.items()],
            "title": title,
            "summary": summary,
            "form": form,
            "switch_form": switch_form,
            "delete_form": delete_form,
            "can_manage": can_manage,
            "spaces": assistant.spaces.exclude(status="retired").order_by("id") if section == "model" else None,
            "brand": selectors.assistant_branding(assistant=assistant)
            if section in ("branding", "behaviour")
            else None,
        },
        status=status,
    )


@login_required
def assistant_settings(request, assistant_id: int, section: str):
    if section not in forms.SETTINGS_SECTIONS:
        raise Http404("No such section")
    if request.method != "POST":
        return _page(request, access.assistant_for(user=request.user, assistant_id=assistant_id), section)
    if section == "danger":  # deleting has its own route
        return HttpResponseNotAllowed(["GET"])
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    if section == "leads":
        form = LeadCaptureSettingsForm(request.POST, capture=LeadCapture.objects.filter(assistant=assistant).first())
        if not form.is_valid():
            return _page(request, assistant, section, form=form, status=400)
        lead_services.lead_capture_save(assistant=assistant, **form.values())
        messages.success(request, "Lead capture saved.")
        return redirect("assistant_settings", assistant_id=assistant.pk, section=section)
    form = forms.AssistantSettingsForm(request.POST, instance=copy.copy(assistant), section=section)
    if not form.is_valid():
        return _page(request, assistant, section, form=form, status=400)
    fields, access_code = form.split()
    services.assistant_update(assistant=assistant, access=access_code, **fields)
    messages.success(request, f"{forms.SETTINGS_SECTIONS[section][0]} saved.")
    return redirect("assistant_settings", assistant_id=assistant.pk, section=section)


@login_required
@require_POST
def assistant_embedding_switch(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.EmbeddingSwitchForm(request.POST)
    if form.is_valid():
        model_name = form.cleaned_data["model_name"].strip()
        try:
            space = ingestion_services.space_switch_start(assistant=assistant, model_name=model_name)
        except (OSError, ValueError, NotImplementedError) as exc:
            form.add_error("model_name", f"This model cannot be used: {exc}")
        else:
            if space.status == space.Status.BUILDING:
                messages.success(
                    request,
                    f"Re-reading your content with {model_name}; answers use the current model until it is done.",
                )
            else:
                messages.success(request, f"Answers use {model_name}.")
            return redirect("assistant_settings", assistant_id=assistant.pk, section="model")
    return _page(request, assistant, "model", switch_form=form, status=400)


@login_required
@require_POST
def assistant_delete(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = forms.AssistantDeleteForm(request.POST, assistant=assistant)
    if not form.is_valid():
        return _page(request, assistant, "danger", delete_form=form, status=400)
    name = assistant.name
    services.assistant_delete(assistant=assistant)
    messages.success(request, f"{name} and everything it held are deleted.")
    return redirect("dashboard")
