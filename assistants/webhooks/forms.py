"""The dashboard's form for a webhook endpoint: its URL (refused at the field when the product may not
call it), the events it wants, a description."""

from __future__ import annotations

from django import forms

from assistants.models import WebhookEndpoint
from assistants.webhooks.services import WebhookError, endpoint_url_check

EVENT_HELP = {
    "lead.created": "a visitor left their contact details",
    "handoff.requested": "a visitor asks for a person",
    "handoff.resolved": "a person resolved a conversation",
    "conversation.rated": "a visitor rated an answer",
    "message.created": "every message of every conversation",
}


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        max_length=2000,
        label="Endpoint URL",
        assume_scheme="https",
        help_text="A public https:// address of yours that accepts POST requests. Addresses on private networks are refused.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/chatsite"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(value, f"{value} — {EVENT_HELP[value]}") for value in WebhookEndpoint.Event.values],
        widget=forms.CheckboxSelectMultiple,
        label="Events to send",
        error_messages={"required": "Choose at least one event."},
    )
    description = forms.CharField(max_length=200, required=False, label="Description (optional)")

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        try:
            endpoint_url_check(url)
        except WebhookError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


class WebhookEndpointEditForm(WebhookEndpointForm):
    enabled = forms.BooleanField(required=False, label="Enabled (events are sent to it)")
