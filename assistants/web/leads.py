"""The team's Leads screen (best first, filters, CSV export), one lead's page (status and notes), and
the visitor's side of lead capture in the chat: the check after each answer and the inline form."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from assistants import access
from assistants.leads import selectors as lead_selectors
from assistants.leads import services as lead_services
from assistants.leads.forms import LeadForm
from assistants.models import Assistant, Lead, LeadCapture, LeadPrompt, Membership
from assistants.notifications import digest
from assistants.web import visitors

PAGE_SIZE = 50


class LeadFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Lead.Status.choices], label="Status")
    assistant = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Assistant")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    min_score = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score at least")
    max_score = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score at most")

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assistant"].choices = [("", "All assistants")] + [(a.pk, a.name) for a in assistants]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            self.add_error("until", "The end date is before the start date.")
        low, high = data.get("min_score"), data.get("max_score")
        if low is not None and high is not None and high < low:
            self.add_error("max_score", "The highest score is below the lowest.")
        return data


class LeadWorkForm(forms.Form):
    status = forms.ChoiceField(choices=Lead.Status.choices, label="Status")
    notes = forms.CharField(required=False, max_length=10000, label="Notes", widget=forms.Textarea(attrs={"rows": 4}))


def _filtered(request, team):
    assistants = team.assistants.order_by("name")
    form = LeadFilterForm(request.GET or None, assistants=assistants)
    if request.GET and not form.is_valid():
        return form, None
    data = form.cleaned_data if request.GET else {}
    leads = lead_selectors.leads_for_team(
        team=team,
        status=data.get("status") or "",
        assistant_id=data.get("assistant"),
        since=data.get("since"),
        until=data.get("until"),
        min_score=data.get("min_score"),
        max_score=data.get("max_score"),
    )
    return form, leads


@login_required
@require_GET
def team_leads(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id)
    form, leads = _filtered(request, team)
    page = Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page")) if leads is not None else None
    filtered = any(value for key, value in request.GET.items() if key != "page")
    membership = Membership.objects.get(team=team, user=request.user)
    return render(
        request,
        "dashboard/leads.html",
        {
            "team": team,
            "form": form,
            "page": page,
            "filtered": filtered,
            "statuses": Lead.Status.choices,
            "digest_on": digest.member_digest_on(membership=membership),
        },
        status=200 if leads is not None else 400,
    )


@login_required
@require_POST
def team_digest(request, team_id: int):
    """The signed-in member's own choice: a daily digest of this team by email, or not."""
    team = access.team_for(user=request.user, team_id=team_id)
    membership = Membership.objects.get(team=team, user=request.user)
    on = request.POST.get("daily_digest") == "on"
    digest.member_digest_set(membership=membership, daily_digest=on)
    if on and not request.user.email:
        messages.error(request, "Add an email address to your account first: the digest has nowhere to go.")
    else:
        messages.success(request, "You will get a daily digest of this team." if on else "No more daily digest.")
    return redirect("team_leads", team_id=team.pk)


@login_required
@require_GET
def team_leads_export(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id)
    _, leads = _filtered(request, team)
    if leads is None:
        return HttpResponseBadRequest("Correct the filters first.")
    response = StreamingHttpResponse(
        lead_selectors.lead_export_csv(leads.iterator()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{team.slug}-leads-{timezone.localdate().isoformat()}.csv"'
    return response


@login_required
def lead_detail(request, lead_id: int):
    write = request.method == "POST"
    lead = access.lead_for(user=request.user, lead_id=lead_id, write=write)
    form = LeadWorkForm(request.POST if write else None, initial={"status": lead.status, "notes": lead.notes})
    if write and form.is_valid():
        lead_services.lead_update(lead=lead, status=form.cleaned_data["status"], notes=form.cleaned_data["notes"])
        messages.success(request, "Lead saved.")
        return redirect("lead_detail", lead_id=lead.pk)
    transcript = list(lead.conversation.messages.all()) if lead.conversation else []
    parts = lead_selectors.score_parts_shown(lead)
    return render(
        request,
        "dashboard/lead_detail.html",
        {
            "team": lead.team,
            "lead": lead,
            "form": form,
            "parts": parts,
            "transcript": transcript,
            "can_work": access.Permission.WORK in lead.viewer_can,
        },
        status=400 if write else 200,
    )


# --- The visitor's side (the chat page and the widget share it) ------------------------------------


@visitors.anonymous_json_post
def embed_lead_check(request, assistant: Assistant, payload: dict):
    """After an answer (or a request for a person: ``{"handoff": true}``): whether to show the lead
    form now, and its fields. Asks once per conversation."""
    conversation = visitors.visitor_conversation(request, assistant, payload.get("conversation_id"))
    if conversation is None:
        return JsonResponse({"ask": False})
    form = lead_services.lead_prompt_check(conversation=conversation, handoff=payload.get("handoff") is True)
    return JsonResponse({"ask": form is not None, "form": form})


@visitors.anonymous_json_post
def embed_lead(request, assistant: Assistant, payload: dict):
    """The visitor's details ``{conversation_id, fields: {...}, consent, page_url}``, or ``{decline: true}``.
    Invalid values answer 400 with ``errors`` by field (the chat keeps what was typed)."""
    conversation = visitors.visitor_conversation(request, assistant, payload.get("conversation_id"))
    if conversation is None:
        return JsonResponse({"error": "no such conversation of yours"}, status=404)
    if payload.get("decline") is True:
        lead_services.lead_prompt_decline(conversation=conversation)
        return JsonResponse({"declined": True})
    refused = visitors.rate_limited(request, assistant, "lead")
    if refused is not None:
        return refused
    if not LeadPrompt.objects.filter(conversation=conversation).exists():  # only the form the chat showed
        return JsonResponse({"error": "this conversation was not asked for details"}, status=409)
    fields = payload.get("fields") if isinstance(payload.get("fields"), dict) else {}
    data = {key: str(value)[:500] for key, value in fields.items() if isinstance(value, str | int | float)}
    if payload.get("consent") is True:
        data["consent"] = "on"
    form = LeadForm(data, capture=LeadCapture.objects.filter(assistant=assistant).first())
    if not form.is_valid():
        return JsonResponse(
            {"errors": {key: [str(e) for e in errors] for key, errors in form.errors.items()}}, status=400
        )
    lead = lead_services.lead_create(
        conversation=conversation,
        contact=form.contact(),
        custom=form.custom(),
        consented="consent" in form.fields,
        page_url=str(payload.get("page_url") or "")[:2000],
    )
    return JsonResponse({"lead_id": lead.pk}, status=201)
