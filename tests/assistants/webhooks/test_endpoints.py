"""The Webhooks screens: adding an endpoint (an address the product may not call is refused at its
field, with what was typed kept), its secret shown only to owners and admins, rotation, deletion."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from assistants.models import WebhookEndpoint
from tests.roles import make_crew

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew():
    return make_crew()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.0.0.7/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata endpoint"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("ftp://example.com/hook", "scheme"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
    ],
)
def test_an_address_that_may_not_be_called_is_refused_at_its_field(crew, url, reason):
    response = signed_in(crew.user("admin")).post(
        reverse("team_webhooks", args=[crew.team.pk]), {"url": url, "events": ["lead.created"], "description": "CRM"}
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == ["url"], form.errors
    assert reason in form.errors["url"][0] or "Enter a valid URL" in form.errors["url"][0]
    html = response.content.decode()
    assert 'id="id_url_error"' in html and 'value="CRM"' in html  # the error at the field; the rest kept
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_adds_an_endpoint_and_sees_its_secret_a_member_does_not(crew):
    admin = signed_in(crew.user("admin"))
    response = admin.post(
        reverse("team_webhooks", args=[crew.team.pk]),
        {"url": "https://93.184.216.34/hooks", "events": ["lead.created", "conversation.rated"]},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert response["Location"] == reverse("webhook_detail", args=[endpoint.pk])
    assert endpoint.events == ["lead.created", "conversation.rated"] and endpoint.secret.startswith("whsec_")
    assert endpoint.secret in admin.get(response["Location"]).content.decode()
    member_page = signed_in(crew.user("member")).get(response["Location"]).content.decode()
    assert endpoint.url in member_page and endpoint.secret not in member_page

    old = endpoint.secret
    admin.post(response["Location"], {"action": "rotate"})
    endpoint.refresh_from_db()
    page = admin.get(response["Location"]).content.decode()
    assert endpoint.secret != old and endpoint.previous_secret == old and old in page and endpoint.secret in page

    listing = signed_in(crew.user("member")).get(reverse("team_webhooks", args=[crew.team.pk])).content.decode()
    assert endpoint.url in listing and "New endpoint" not in listing

    admin.post(response["Location"], {"action": "delete"})
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_needs_an_event(crew):
    response = signed_in(crew.user("owner")).post(
        reverse("team_webhooks", args=[crew.team.pk]), {"url": "https://93.184.216.34/hooks"}
    )
    assert response.status_code == 400 and list(response.context["form"].errors) == ["events"]


def test_a_name_that_resolves_nowhere_is_refused(crew):
    response = signed_in(crew.user("owner")).post(
        reverse("team_webhooks", args=[crew.team.pk]),
        {"url": "https://no-such-host.invalid/hook", "events": ["lead.created"]},
    )
    assert response.status_code == 400 and "could not be found" in response.context["form"].errors["url"][0]
