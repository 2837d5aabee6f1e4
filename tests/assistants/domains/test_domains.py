"""Custom domains: added and verified in the dashboard, then served by the middleware — only when verified."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone

from assistants.models import CustomDomain
from tests.factories import index_pages, make_assistant, make_team, make_user
from tests.servers import serve_directory
from tests.sse import parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = """<html><head><title>Returns</title></head><body><main><h1>Returns</h1>
<h2 id="window">Window</h2><p>Customers may return any item within sixty days of delivery.</p></main></body></html>"""


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def assistant(owner):
    assistant = make_assistant(make_team(owner), "Customer Help")
    index_pages(assistant, {"http://shop.test/returns/": PAGE})
    return assistant


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def token_site(tmp_path, settings):
    """A local web server for http://localhost:<port>/.well-known/…, reachable by the outbound client."""
    (tmp_path / ".well-known").mkdir()
    server, url = serve_directory(tmp_path)
    settings.CUSTOM_DOMAIN_HTTP_PORT = server.server_address[1]
    yield tmp_path / ".well-known" / "chatsite-verification.txt"
    server.shutdown()


def add(client, assistant, host):
    return client.post(f"/assistants/{assistant.pk}/domains/", {"host": host}, follow=True)


def verified(assistant, host):
    return CustomDomain.objects.create(
        assistant=assistant, host=host, verification_token="t", verified_at=timezone.now()
    )


def test_a_host_is_added_lower_cased_once_and_its_token_shown(owner_client, assistant):
    response = add(owner_client, assistant, "  Help.Customer.TEST. ")
    domain = CustomDomain.objects.get()
    assert domain.host == "help.customer.test" and domain.verified_at is None
    assert len(domain.verification_token) > 30
    html = response.content.decode()
    assert domain.verification_token in html and "_chatsite-challenge.help.customer.test" in html
    assert "http://help.customer.test/.well-known/chatsite-verification.txt" in html
    assert "dnspython is not installed" in html  # DNS checks are documented as unavailable here
    assert "already in use" in add(owner_client, assistant, "help.customer.test").content.decode()  # once
    for bad in ("https://help.customer.test/", "10.0.0.1", "help customer.test", "-bad-.test", "a" * 64 + ".test", ""):
        add(owner_client, assistant, bad)
    assert CustomDomain.objects.count() == 1


def test_the_http_file_verifies_the_host(owner_client, assistant, token_site, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the "customer's server" is on loopback here
    add(owner_client, assistant, "localhost")
    domain = CustomDomain.objects.get()

    owner_client.post(f"/domains/{domain.pk}/verify/")  # no file yet
    domain.refresh_from_db()
    assert domain.verified_at is None and "answered HTTP 404" in domain.last_check_error

    token_site.write_text("someone-else's-token\n")
    owner_client.post(f"/domains/{domain.pk}/verify/")
    domain.refresh_from_db()
    assert domain.verified_at is None and "does not contain the verification token" in domain.last_check_error

    token_site.write_text(domain.verification_token + "\n")
    response = owner_client.post(f"/domains/{domain.pk}/verify/", follow=True)
    domain.refresh_from_db()
    assert domain.verified_at is not None and domain.last_check_error == ""
    assert "localhost is verified" in response.content.decode()


def test_an_unverified_claim_blocks_nobody_and_the_first_verified_claim_wins(
    owner_client, assistant, token_site, settings
):
    """Security finding 12: an unverified claim used to block the host's real owner forever."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    squatter = make_assistant(make_team(make_user()), "Squatter")
    squatter_client = Client()
    squatter_client.force_login(squatter.team.memberships.get().user)
    add(squatter_client, squatter, "localhost")  # claims it first, can never prove it
    add(owner_client, assistant, "localhost")
    squatted, ours = CustomDomain.objects.get(assistant=squatter), CustomDomain.objects.get(assistant=assistant)
    token_site.write_text(ours.verification_token)
    owner_client.post(f"/domains/{ours.pk}/verify/")
    ours.refresh_from_db()
    assert ours.verified_at is not None
    assert not CustomDomain.objects.filter(pk=squatted.pk).exists(), "the other claims go"
    assert "already in use" in add(squatter_client, squatter, "localhost").content.decode()


def test_an_unverified_claim_expires(owner_client, assistant, token_site, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    add(owner_client, assistant, "localhost")
    claim = CustomDomain.objects.get()
    CustomDomain.objects.filter(pk=claim.pk).update(created_at=timezone.now() - timezone.timedelta(days=8))
    token_site.write_text(claim.verification_token)
    owner_client.post(f"/domains/{claim.pk}/verify/")
    claim.refresh_from_db()
    assert claim.verified_at is None and "expired" in claim.last_check_error
    other = make_assistant(make_team(make_user()), "Other")
    other_client = Client()
    other_client.force_login(other.team.memberships.get().user)
    add(other_client, other, "localhost")  # an expired claim of the host is removed when someone claims it
    assert list(CustomDomain.objects.values_list("assistant_id", flat=True)) == [other.pk]


def test_verification_goes_through_the_ssrf_safe_client(owner_client, assistant, token_site, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    add(owner_client, assistant, "localhost")
    domain = CustomDomain.objects.get()
    token_site.write_text(domain.verification_token)
    owner_client.post(f"/domains/{domain.pk}/verify/")
    domain.refresh_from_db()
    assert domain.verified_at is None and "may not be fetched" in domain.last_check_error
    assert "loopback" in domain.last_check_error


def test_another_team_cannot_touch_a_domain(assistant):
    domain = verified(assistant, "help.customer.test")
    outsider = Client()
    outsider.force_login(make_user())
    assert outsider.post(f"/domains/{domain.pk}/verify/").status_code == 404
    assert outsider.post(f"/domains/{domain.pk}/delete/").status_code == 404
    assert outsider.post(f"/assistants/{assistant.pk}/domains/", {"host": "x.customer.test"}).status_code == 404
    assert CustomDomain.objects.filter(pk=domain.pk).exists()


def test_a_verified_host_serves_the_assistant_and_nothing_else(assistant):
    verified(assistant, "help.customer.test")
    client = Client(HTTP_HOST="help.customer.test")
    home = client.get("/")
    assert home.status_code == 200 and "<title>Customer Help</title>" in home.content.decode()
    assert client.get("/", HTTP_HOST="HELP.customer.test:8443").status_code == 200
    assert client.get(f"/a/{assistant.slug}/conversation").status_code == 200
    assert client.get("/static/css/chat.css").status_code == 200

    async def ask():
        visitor = AsyncClient(HTTP_HOST="help.customer.test")
        response = await visitor.post(
            f"/a/{assistant.slug}/chat",
            data=json.dumps({"question": "How long to return?"}),
            content_type="application/json",
        )
        return response.status_code, b"".join([chunk async for chunk in response.streaming_content])

    status, body = async_to_sync(ask)()
    assert status == 200
    assert "sixty days" in "".join(data.get("text", "") for name, data in parse_sse(body) if name == "token")

    other = make_assistant()
    for path in ("/login/", "/admin/", f"/a/{other.slug}/", f"/embed/{other.public_key}/", "/domains/check?domain=x"):
        assert client.get(path).status_code == 404, path


def test_unknown_and_unverified_hosts_are_refused(assistant):
    CustomDomain.objects.create(assistant=assistant, host="pending.customer.test", verification_token="t")
    for host in ("pending.customer.test", "evil.test", "help.customer.test.evil.test"):
        response = Client(HTTP_HOST=host).get("/")
        assert response.status_code == 400, host  # Django's DisallowedHost, as before
    # The platform's own host is untouched: its dashboard still answers there.
    assert Client().get("/").status_code == 302


def test_caddy_asks_before_getting_a_certificate(assistant):
    verified(assistant, "help.customer.test")
    CustomDomain.objects.create(assistant=assistant, host="pending.customer.test", verification_token="t")
    client = Client()
    assert client.get("/domains/check", {"domain": "help.customer.test"}).status_code == 200
    assert client.get("/domains/check", {"domain": "HELP.customer.test"}).status_code == 200
    assert client.get("/domains/check", {"domain": "pending.customer.test"}).status_code == 404
    assert client.get("/domains/check", {"domain": "unknown.test"}).status_code == 404
    assert client.get("/domains/check").status_code == 404


def test_an_internal_assistant_keeps_its_code_on_its_domain(assistant, owner_client):
    response = owner_client.post(f"/assistants/{assistant.pk}/settings/access/", {"access_code": "staff-only-1"})
    assert response.status_code == 302
    verified(assistant, "help.customer.test")
    client = Client(HTTP_HOST="help.customer.test")
    assert client.get("/").status_code == 403
    response = client.post(f"/a/{assistant.slug}/access", {"code": "staff-only-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
