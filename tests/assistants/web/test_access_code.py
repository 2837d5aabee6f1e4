"""Internal assistants: an access code guards the full page, the widget and every chat endpoint."""

import json

import pytest
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.test import AsyncClient, Client

from assistants.models import Conversation
from tests.factories import index_pages, make_assistant, make_team, make_user
from tests.sse import parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

CODE = "open-sesame-42"
PAGE = """<html><head><title>Holidays</title></head><body><main><h1>Holidays</h1>
<h2 id="leave">Leave</h2><p>Every employee gets thirty days of paid leave per year.</p></main></body></html>"""


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def assistant(owner):
    assistant = make_assistant(make_team(owner), "Secret HR Bot")
    assistant.greeting = "Welcome to the HR desk"
    assistant.save()
    index_pages(assistant, {"http://intranet.test/holidays/": PAGE})
    client = Client()
    client.force_login(owner)
    response = client.post(f"/assistants/{assistant.pk}/settings/access/", {"access_code": CODE})
    assert response.status_code == 302
    assistant.refresh_from_db()
    return assistant


def chat(client, slug, headers=None):
    async def run():
        response = await client.post(
            f"/a/{slug}/chat",
            data=json.dumps({"question": "How many days of leave?"}),
            content_type="application/json",
            headers=headers or {},
        )
        body = (
            b"".join([chunk async for chunk in response.streaming_content]) if response.streaming else response.content
        )
        return response.status_code, body

    from asgiref.sync import async_to_sync

    return async_to_sync(run)()


def test_the_code_is_stored_hashed(assistant):
    assert assistant.access_code_hash and CODE not in assistant.access_code_hash
    # a password hash of the configured hasher (PBKDF2 in production, a fast one in the tests)
    assert identify_hasher(assistant.access_code_hash).algorithm == get_hasher().algorithm


def test_without_the_code_everything_refuses_and_reveals_nothing(assistant):
    client = Client()
    page = client.get(f"/a/{assistant.slug}/")
    html = page.content.decode()
    assert page.status_code == 403 and 'name="code"' in html
    assert "Secret HR Bot" not in html and "Welcome to the HR desk" not in html
    status, body = chat(AsyncClient(), assistant.slug)
    assert status == 403 and b"leave" not in body and b"thirty" not in body
    assert client.get(f"/a/{assistant.slug}/conversation").status_code == 403
    embed = client.get(f"/embed/{assistant.public_key}/")
    assert embed.status_code == 403 and "Secret HR Bot" not in embed.content.decode()
    assert "frame-ancestors 'self'" in embed["Content-Security-Policy"]
    assert client.get(f"/embed/{assistant.public_key}/conversation").status_code == 403
    for endpoint in ("feedback", "contact"):
        response = client.post(
            f"/embed/{assistant.public_key}/{endpoint}",
            json.dumps({"email": "a@b.test"}),
            content_type="application/json",
            HTTP_COOKIE="cs_visitor=" + "v" * 32,
        )
        assert response.status_code == 403
    forged = chat(AsyncClient(), assistant.slug, headers={"X-Chatsite-Access": "forged:pass"})
    assert forged[0] == 403
    assert not Conversation.objects.exists()


def test_a_wrong_code_says_so(assistant):
    response = Client().post(f"/a/{assistant.slug}/access", {"code": "wrong-code"})
    assert response.status_code == 403
    assert "That access code is not right" in response.content.decode()
    assert not [name for name in response.cookies if name.startswith("cs_access_")]


def test_the_right_code_opens_the_full_page_and_its_chat(assistant):
    client = Client()
    response = client.post(f"/a/{assistant.slug}/access", {"code": CODE})
    assert response.status_code == 302 and response["Location"] == f"/a/{assistant.slug}/"
    cookie = response.cookies[f"cs_access_{assistant.pk}"]
    assert cookie["httponly"] and CODE not in cookie.value
    page = client.get(f"/a/{assistant.slug}/")
    assert page.status_code == 200 and "Welcome to the HR desk" in page.content.decode()
    visitor = AsyncClient()
    visitor.cookies = client.cookies
    status, body = chat(visitor, assistant.slug)
    assert status == 200
    assert "thirty days" in "".join(data.get("text", "") for name, data in parse_sse(body) if name == "token")
    assert client.get(f"/a/{assistant.slug}/conversation").status_code == 200
    # The pass is for this assistant only.
    other = make_assistant()
    other.access_code_hash = assistant.access_code_hash
    other.save()
    assert client.get(f"/a/{other.slug}/").status_code == 403


def test_changing_the_code_revokes_passes(assistant, owner):
    client = Client()
    client.post(f"/a/{assistant.slug}/access", {"code": CODE})
    assert client.get(f"/a/{assistant.slug}/").status_code == 200
    dashboard = Client()
    dashboard.force_login(owner)
    dashboard.post(f"/assistants/{assistant.pk}/settings/access/", {"access_code": "new-code-77"})
    assert client.get(f"/a/{assistant.slug}/").status_code == 403
    dashboard.post(f"/assistants/{assistant.pk}/settings/access/", {"clear_access_code": "on"})
    assistant.refresh_from_db()
    assert assistant.access_code_hash == ""
    assert Client().get(f"/a/{assistant.slug}/").status_code == 200


def test_the_widget_gets_a_pass_that_its_requests_carry(assistant):
    client = Client()
    page = client.post(f"/embed/{assistant.public_key}/access?origin=http://shop.test", {"code": CODE})
    # The chat itself, with the pass inside the page: no redirect to an address carrying it (access logs).
    assert page.status_code == 200 and "Welcome to the HR desk" in page.content.decode()
    assert "access=" not in page.get("Location", "") and page["Cache-Control"] == "no-store"
    access = page.context["access"]
    assert access and f'data-access="{access}"' in page.content.decode() and not page.cookies
    assert Client().get(f"/embed/{assistant.public_key}/?access={access}").status_code == 403  # not from the address
    assert Client().get(f"/embed/{assistant.public_key}/conversation", HTTP_X_CHATSITE_ACCESS=access).status_code == 200
    status, _ = chat(AsyncClient(), assistant.slug, headers={"X-Chatsite-Access": access})
    assert status == 200


def test_code_guessing_is_rate_limited(assistant):
    client = Client()
    statuses = [client.post(f"/a/{assistant.slug}/access", {"code": f"guess-{n}"}).status_code for n in range(10)]
    assert statuses == [403] * 10
    blocked = client.post(f"/a/{assistant.slug}/access", {"code": CODE})  # even the right code, for a minute
    assert blocked.status_code == 429 and "Too many tries" in blocked.content.decode()
    assert f"cs_access_{assistant.pk}" not in blocked.cookies


def test_a_public_assistant_needs_no_code():
    assistant = make_assistant()
    assert Client().get(f"/a/{assistant.slug}/").status_code == 200
    assert Client().get(f"/embed/{assistant.public_key}/").status_code == 200
