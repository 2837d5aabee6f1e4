"""The team's webhooks: endpoints (every member reads them; owners and admins add, change, rotate the
secret of, replay and delete them) and each endpoint's delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from assistants import access
from assistants.webhooks import selectors, services
from assistants.webhooks.forms import WebhookEndpointEditForm, WebhookEndpointForm


@login_required
def team_webhooks(request, team_id: int):
    if request.method == "POST":
        team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.MANAGE)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = services.endpoint_create(team=team, **form.cleaned_data)
            except services.WebhookError as exc:  # the name's DNS answer changed since the form's check
                form.add_error("url", str(exc))
            else:
                messages.success(request, "Endpoint added. Copy its signing secret to verify what it receives.")
                return redirect("webhook_detail", endpoint_id=endpoint.pk)
    else:
        team = access.team_for(user=request.user, team_id=team_id)
        form = WebhookEndpointForm(initial={"events": ["lead.created"]})
    return render(
        request,
        "dashboard/webhooks.html",
        {
            "team": team,
            "endpoints": selectors.endpoints_for_team(team=team),
            "form": form,
            "can_manage": access.Permission.MANAGE in team.viewer_can,
        },
        status=400 if form.is_bound else 200,
    )


def _detail_page(request, endpoint, *, form=None, status=200):
    can_manage = access.Permission.MANAGE in endpoint.viewer_can
    if form is None:
        form = WebhookEndpointEditForm(
            initial={
                "url": endpoint.url,
                "events": endpoint.events,
                "description": endpoint.description,
                "enabled": endpoint.enabled,
            }
        )
    return render(
        request,
        "dashboard/webhook_detail.html",
        {
            "team": endpoint.team,
            "endpoint": endpoint,
            "form": form,
            "deliveries": selectors.deliveries_for_endpoint(endpoint=endpoint),
            "can_manage": can_manage,
            "secrets": services.secrets_in_use(endpoint) if can_manage else [],
        },
        status=status,
    )


@login_required
def webhook_detail(request, endpoint_id: int):
    if request.method != "POST":
        return _detail_page(request, access.webhook_endpoint_for(user=request.user, endpoint_id=endpoint_id))
    endpoint = access.webhook_endpoint_for(user=request.user, endpoint_id=endpoint_id, write=True)
    action = request.POST.get("action", "save")
    if action == "rotate":
        services.endpoint_secret_rotate(endpoint=endpoint)
        messages.success(
            request, "New secret made. The old one keeps signing beside it for a day: update your receiver."
        )
        return redirect("webhook_detail", endpoint_id=endpoint.pk)
    if action == "delete":
        team_id = endpoint.team_id
        services.endpoint_delete(endpoint=endpoint)
        messages.success(request, "Endpoint deleted.")
        return redirect("team_webhooks", team_id=team_id)
    form = WebhookEndpointEditForm(request.POST)
    if form.is_valid():
        try:
            services.endpoint_update(endpoint=endpoint, **form.cleaned_data)
        except services.WebhookError as exc:
            form.add_error("url", str(exc))
    if form.errors:
        return _detail_page(request, endpoint, form=form, status=400)
    messages.success(request, "Endpoint saved.")
    return redirect("webhook_detail", endpoint_id=endpoint.pk)


@login_required
@require_POST
def webhook_delivery_replay(request, delivery_id: int):
    delivery = access.webhook_delivery_for(user=request.user, delivery_id=delivery_id, write=True)
    if not delivery.endpoint.enabled:
        messages.error(request, "Enable the endpoint first: a disabled endpoint receives nothing.")
    else:
        services.delivery_replay(delivery=delivery)
        messages.success(request, f"{delivery.event_type} {delivery.message_id} is being sent again.")
    return redirect("webhook_detail", endpoint_id=delivery.endpoint_id)
