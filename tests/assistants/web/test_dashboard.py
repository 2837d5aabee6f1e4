"""The dashboard: sign-up, teams, assistants and sources, for whom may and who may not."""

import pytest
from django.test import Client

from assistants.models import Assistant, Conversation, Membership, Message, Team
from ingestion.models import CrawlRun, Source
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def assistant(owner):
    return make_assistant(make_team(owner, "Acme"), "Acme Help")


@pytest.fixture
def outsider_client():
    client = Client()
    client.force_login(make_user("outsider"))
    return client


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_signup_creates_the_user_and_their_team():
    client = Client()
    response = client.post(
        "/signup/", {"username": "ada", "email": "ada@example.com", "password": "analytical-9", "team_name": "Engines"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__username="ada")
    assert membership.team.name == "Engines" and membership.role == "owner"
    assert "Engines" in client.get("/").content.decode()


def test_the_dashboard_needs_a_login():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_owner_creates_an_assistant_with_its_embedding_space(owner_client, owner):
    team = make_team(owner, "Second team")
    response = owner_client.post(
        f"/teams/{team.pk}/assistants/new/",
        {
            "name": "Docs bot",
            "greeting": "Hello",
            "system_prompt": "Be brief.",
            "primary_color": "#123456",
            "background_color": "#ffffff",
            "allowed_domains": "www.example.com\nexample.com",
        },
    )
    assistant = Assistant.objects.get(name="Docs bot")
    # straight on to its website: the first step of getting started
    assert response.status_code == 302 and response["Location"] == f"/assistants/{assistant.pk}/start/"
    assert assistant.team == team and assistant.allowed_domains == ["www.example.com", "example.com"]
    assert assistant.spaces.get().status == "active"


def test_a_member_cannot_create_assistants(owner):
    team = make_team(owner)
    member = make_user()
    Membership.objects.create(team=team, user=member, role="member")
    client = Client()
    client.force_login(member)
    client.post(
        f"/teams/{team.pk}/assistants/new/", {"name": "Nope", "primary_color": "#123456", "background_color": "#ffffff"}
    )
    assert not Assistant.objects.filter(name="Nope").exists()


def test_adding_a_website_queues_a_crawl(owner_client, assistant):
    response = owner_client.post(
        f"/assistants/{assistant.pk}/sources/new/",
        {"url": "https://docs.example.com/", "max_pages": 10, "max_depth": 2},
    )
    source = Source.objects.get(assistant=assistant)
    assert response["Location"] == f"/sources/{source.pk}/"
    assert source.settings == {"max_pages": 10, "max_depth": 2}
    assert source.status == "queued" and CrawlRun.objects.get(source=source).status == "queued"
    page = owner_client.get(f"/sources/{source.pk}/").content.decode()
    assert "Pages found" in page and "Crawl report" not in page


def test_a_private_address_is_refused_as_a_source(owner_client, assistant):
    response = owner_client.post(
        f"/assistants/{assistant.pk}/sources/new/",
        {"url": "http://127.0.0.1:6379/", "max_pages": 10, "max_depth": 2},
        follow=True,
    )
    assert not Source.objects.exists()
    assert "cannot be crawled" in response.content.decode()


def test_another_team_sees_nothing(outsider_client, assistant):
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/")
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="t" * 30)
    for url in [
        f"/assistants/{assistant.pk}/",
        f"/assistants/{assistant.pk}/settings/branding/",
        f"/sources/{source.pk}/",
        f"/sources/{source.pk}/progress",
        f"/conversations/{conversation.pk}/",
        f"/teams/{assistant.team_id}/assistants/new/",
    ]:
        assert outsider_client.get(url).status_code == 404, url
    assert (
        outsider_client.post(f"/assistants/{assistant.pk}/sources/new/", {"url": "https://x.example/"}).status_code
        == 404
    )
    assert outsider_client.post(f"/sources/{source.pk}/crawl").status_code == 404
    assert "Acme Help" not in outsider_client.get("/").content.decode()


def test_the_conversation_view_escapes_what_visitors_and_models_write(owner_client, assistant):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="t" * 30)
    Message.objects.create(conversation=conversation, role="user", text='<img src=x onerror="alert(1)">')
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        text="<script>alert(2)</script>",
        citations=[{"n": 1, "title": "<b>t</b>", "url": "javascript:alert(3)"}],
    )
    page = owner_client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "<img src=x" not in page and "<script>alert(2)" not in page and "<b>t</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert 'href="javascript:' not in page


def test_the_help_pages_are_served():
    client = Client()
    for path in ["/help/", "/help/sources/", "/help/chat/", "/help/getting-started/", "/help/operations/"]:
        assert client.get(path).status_code == 200
    assert client.get("/help/nope/").status_code == 404


def test_teams_are_unique_by_slug(owner):
    first, second = make_team(owner, "Same"), make_team(owner, "Same")
    assert first.slug != second.slug and Team.objects.filter(name="Same").count() == 2


def test_an_owner_creates_an_api_key_shown_once_and_revokes_it(owner_client, owner):
    from assistants.api.keys import api_key_authenticate, key_hash
    from assistants.models import ApiKey

    team = make_team(owner, "Keys team")
    page = owner_client.post(f"/teams/{team.pk}/api-keys/", {"name": "CMS", "scopes": ["read", "write"]}, follow=True)
    assert page.redirect_chain == [(f"/teams/{team.pk}/api-keys/", 302)]  # a reload does not create it again
    page = page.content.decode()
    key = ApiKey.objects.get(team=team)
    raw = page.split('<code id="new-key">')[1].split("</code>")[0]
    assert key.key_hash == key_hash(raw) and raw not in str(key.__dict__)
    assert raw not in owner_client.get(f"/teams/{team.pk}/api-keys/").content.decode()  # shown once
    assert api_key_authenticate(raw_key=raw) == key
    owner_client.post(f"/teams/{team.pk}/api-keys/", {"revoke": key.pk})
    assert api_key_authenticate(raw_key=raw) is None


def test_api_keys_are_out_of_reach_of_other_teams_and_members(owner, outsider_client):
    team = make_team(owner)
    assert outsider_client.get(f"/teams/{team.pk}/api-keys/").status_code == 404
    member = make_user()
    Membership.objects.create(team=team, user=member, role="member")
    client = Client()
    client.force_login(member)
    assert client.get(f"/teams/{team.pk}/api-keys/").status_code == 200  # members read
    assert client.post(f"/teams/{team.pk}/api-keys/", {"name": "x", "scopes": ["read"]}).status_code == 403
    assert not team.api_keys.exists()
