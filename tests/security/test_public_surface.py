"""The public surface, as an attacker from another site sees it: no CORS, no secrets, keys only where they
belong, no open redirects (part of the security suite; rate limits: tests/assistants/web/test_rate_limits.py,
XSS in a real browser: tests/browser/test_widget_browser.py, tenancy: tests/assistants/web/test_roles.py and
tests/assistants/api/test_isolation.py)."""

import json

import pytest
from django.conf import settings
from django.test import Client

from assistants.api.keys import api_key_create
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db

EVIL = "https://evil.example"


@pytest.fixture
def world(settings):
    settings.LLM_API_KEY = "sk-operator-secret-" + "x" * 20
    settings.LLM_API_KEY_ANTHROPIC = "sk-ant-operator-secret"
    owner = make_user()
    assistant = make_assistant(make_team(owner), "Public Help")
    _, raw_key = api_key_create(team=assistant.team, name="ci", scopes=["read", "write", "chat"])
    return owner, assistant, raw_key


def public_urls(assistant) -> list[str]:
    return [
        "/widget.js",
        f"/embed/{assistant.public_key}/",
        f"/embed/{assistant.public_key}/conversation",
        f"/a/{assistant.slug}/",
        f"/a/{assistant.slug}/conversation",
        "/api/v1/openapi.json",
        "/help/",
        "/login/",
        "/signup/",
    ]


def test_no_endpoint_lets_another_site_read_it(world):
    _, assistant, raw_key = world
    client = Client(HTTP_ORIGIN=EVIL)
    for url in [*public_urls(assistant), "/api/v1/assistants"]:
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        assert "Access-Control-Allow-Origin" not in response, url
        assert "Access-Control-Allow-Credentials" not in response, url
    preflight = client.options(f"/a/{assistant.slug}/chat", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in preflight


def test_public_pages_carry_no_secret(world):
    _, assistant, raw_key = world
    secrets = [
        settings.SECRET_KEY,
        settings.LLM_API_KEY,
        settings.LLM_API_KEY_ANTHROPIC,
        raw_key,
        settings.DATABASES["default"]["PASSWORD"] or "no-password-set",
        assistant.team.api_keys.get().key_hash,
    ]
    client = Client()
    for url in public_urls(assistant):
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        for secret in secrets:
            assert secret.encode() not in body, (url, secret[:6])


def test_keys_only_open_the_api_and_sessions_only_the_dashboard(world):
    owner, assistant, raw_key = world
    with_key = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert with_key.get(f"/assistants/{assistant.pk}/").status_code == 302  # a key is not a sign-in
    assert with_key.get("/api/v1/assistants").status_code == 200
    signed_in = Client()
    signed_in.force_login(owner)
    assert signed_in.get(f"/assistants/{assistant.pk}/").status_code == 200
    assert signed_in.get("/api/v1/assistants").status_code == 401  # a session is not a key
    cross_site = Client(enforce_csrf_checks=True)  # as a browser sends it: the session, no CSRF token
    cross_site.force_login(owner)
    forged = cross_site.post(  # nor can a page of another site drive the dashboard with the session
        f"/assistants/{assistant.pk}/settings/branding/",
        {"name": "Pwned"},
        HTTP_ORIGIN=EVIL,
    )
    assert forged.status_code == 403
    assistant.refresh_from_db()
    assert assistant.name == "Public Help"


@pytest.mark.parametrize("target", [EVIL, "//evil.example", "/\\evil.example", "https:evil.example"])
def test_no_open_redirect_after_signing_in_or_unlocking(world, target):
    owner, assistant, _ = world
    client = Client()
    response = client.post(f"/login/?next={target}", {"username": owner.username, "password": "correct-horse-9"})
    assert response.status_code == 302 and "evil" not in response["Location"]
    from django.contrib.auth.hashers import make_password

    assistant.access_code_hash = make_password("open-sesame-42")
    assistant.save()
    unlocked = Client().post(f"/a/{assistant.slug}/access?next={target}", {"code": "open-sesame-42"})
    assert unlocked.status_code == 302 and "evil" not in unlocked["Location"]


def test_the_chat_refuses_a_form_post_from_another_site(world):
    """The anonymous JSON endpoints need no CSRF token because a cross-site form cannot send JSON."""
    _, assistant, _ = world
    client = Client(HTTP_ORIGIN=EVIL)
    form = client.post(f"/a/{assistant.slug}/chat", {"question": "hi"})
    assert form.status_code == 400
    contact = client.post(
        f"/embed/{assistant.public_key}/contact",
        "email=a@b.example",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CHATSITE_VISITOR="v" * 30,
    )
    assert contact.status_code == 400
    as_text = client.post(
        f"/embed/{assistant.public_key}/feedback",
        json.dumps({"message_id": 1, "rating": 1}),
        content_type="text/plain",
        HTTP_X_CHATSITE_VISITOR="v" * 30,
    )
    assert as_text.status_code == 400
