"""Getting an assistant onto a site: the Install page and its allowed domains, the loader's check,
the first steps after creating an assistant (a checklist from real state), and the access-code page
in the assistant's look and language."""

import re

import pytest
from django.test import Client

from assistants.models import Assistant, Conversation, Membership
from ingestion.models import CrawlRun, Source
from tests.factories import index_pages, make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db

PAGE = """<html><head><title>Pricing</title></head><body><main><h1>Pricing</h1>
<p>The Starter plan costs 10 euros per month.</p></main></body></html>"""


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def assistant(owner):
    return make_assistant(make_team(owner, "Acme"), 'Acme "Help" <b>')


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


# --- The Install page ------------------------------------------------------------------------------


def test_the_install_page_offers_the_snippet_the_link_and_the_iframe(owner, assistant):
    html = client_for(owner).get(f"/assistants/{assistant.pk}/install/").content.decode()
    assert (
        f"&lt;script src=&quot;http://testserver/widget.js&quot; data-assistant=&quot;{assistant.public_key}&quot; "
        "async&gt;&lt;/script&gt;" in html
    )
    assert f"http://testserver/a/{assistant.slug}/" in html
    assert f"src=&quot;http://testserver/embed/{assistant.public_key}/&quot;&gt;&lt;/iframe&gt;" in html
    # the name is escaped once for the snippet's attribute, and again to be shown
    assert "title=&quot;Acme &amp;quot;Help&amp;quot; &amp;lt;b&amp;gt;&quot;" in html
    assert html.count('data-copy="snippet-') == 3 and 'name="allowed_domains"' in html
    assert "No site may show the widget yet" in html and "Not seen on a site yet" in html


def test_allowed_domains_are_saved_cleaned(owner, assistant):
    client = client_for(owner)
    response = client.post(
        f"/assistants/{assistant.pk}/install/", {"allowed_domains": "WWW.Example.com\n\n*.shop.test\nlocalhost:8080\n"}
    )
    assert response.status_code == 302 and response["Location"] == f"/assistants/{assistant.pk}/install/"
    assistant.refresh_from_db()
    assert assistant.allowed_domains == ["www.example.com", "*.shop.test", "localhost:8080"]
    page = client.get(response["Location"]).content.decode()
    assert "Saved: the widget may show on 3 sites." in page
    assert "www.example.com\n*.shop.test\nlocalhost:8080</textarea>" in page


@pytest.mark.parametrize(
    "typed, message",
    [
        ("www.ok.test\nnot a domain!!", "“not a domain!!” is not a domain."),
        ("https://x/path", "“https://x/path” is an address, not a domain. Write just the host name: x"),
    ],
)
def test_a_wrong_domain_is_refused_at_its_field_with_the_text_kept(owner, assistant, typed, message):
    assistant.allowed_domains = ["kept.test"]
    assistant.save()
    response = client_for(owner).post(f"/assistants/{assistant.pk}/install/", {"allowed_domains": typed})
    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(r'<p class="field-error" id="id_allowed_domains_error">(.*?)</p>', html)
    assert error and message in error.group(1).replace("&amp;", "&")
    assert 'aria-invalid="true"' in html and 'class="field has-error"' in html
    textarea = re.search(r"<textarea name=\"allowed_domains\".*?>(.*?)</textarea>", html, re.S).group(1)
    assert textarea == typed.replace("&", "&amp;")  # as typed
    assistant.refresh_from_db()
    assert assistant.allowed_domains == ["kept.test"]


def test_the_settings_form_uses_the_same_rule(owner, assistant):
    response = client_for(owner).post(
        f"/assistants/{assistant.pk}/settings/access/", {"allowed_domains": "https://x/path"}
    )
    assert response.status_code == 400 and "Write just the host name: x" in response.content.decode()
    assert "https://x/path" in response.content.decode()  # the form as typed


def test_a_member_reads_the_install_page_without_the_form(owner, assistant):
    member = make_user()
    Membership.objects.create(team=assistant.team, user=member, role="member")
    assistant.allowed_domains = ["www.example.com"]
    assistant.save()
    html = client_for(member).get(f"/assistants/{assistant.pk}/install/").content.decode()
    assert "<code>www.example.com</code>" in html and 'name="allowed_domains"' not in html
    assert "An owner or admin of the team changes this list." in html
    assert client_for(member).post(f"/assistants/{assistant.pk}/install/", {"allowed_domains": ""}).status_code == 403


# --- The loader's check -----------------------------------------------------------------------------


def check(assistant, origin="", parameter=""):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    query = f"?origin={parameter}" if parameter else ""
    return Client().get(f"/embed/{assistant.public_key}/allowed{query}", **headers)


def test_an_allowed_origin_gets_the_launchers_look_and_marks_the_widget_installed(assistant):
    assistant.allowed_domains = ["www.example.com", "secret-partner.test"]
    assistant.primary_color = "#ffdd00"
    assistant.launcher_position = "left"
    assistant.save()
    response = check(assistant, origin="https://www.example.com")
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "allowed": True,
        "brand": {"color": "#ffdd00", "on_color": "#111827", "position": "left", "icon": "chat"},
    }
    assistant.refresh_from_db()
    assert assistant.widget_seen_at is not None and assistant.widget_seen_origin == "https://www.example.com"


def test_a_refused_origin_learns_what_to_add_and_nothing_of_the_list(assistant):
    assistant.allowed_domains = ["www.example.com", "secret-partner.test"]
    assistant.save()
    response = check(assistant, origin="http://127.0.0.1:8123")
    assert response.status_code == 200 and response.json() == {"allowed": False, "add": "127.0.0.1:8123"}
    assert b"example.com" not in response.content and b"secret-partner" not in response.content
    assistant.refresh_from_db()
    assert assistant.widget_seen_at is None


def test_only_the_browsers_origin_header_counts_as_installed(assistant):
    assistant.allowed_domains = ["www.example.com"]
    assistant.save()
    assert check(assistant, parameter="https://www.example.com").json()["allowed"] is True
    assert check(assistant, parameter="https://www.example.com", origin="https://evil.test").json()["allowed"] is False
    assistant.refresh_from_db()
    assert assistant.widget_seen_at is None


def test_the_platforms_own_pages_may_show_the_widget_without_counting(assistant):
    assert check(assistant, parameter="http://testserver").json()["allowed"] is True
    assistant.refresh_from_db()
    assert assistant.widget_seen_at is None


def test_an_unknown_key_is_404_for_any_page():
    response = Client().get("/embed/pk_nope/allowed", HTTP_ORIGIN="https://www.example.com")
    assert response.status_code == 404 and response["Access-Control-Allow-Origin"] == "*"


def test_installed_is_recorded_at_most_every_few_minutes_unless_the_site_changes(assistant):
    assistant.allowed_domains = ["a.test", "b.test"]
    assistant.save()
    check(assistant, origin="https://a.test")
    first = Assistant.objects.get(pk=assistant.pk).widget_seen_at
    check(assistant, origin="https://a.test")
    assert Assistant.objects.get(pk=assistant.pk).widget_seen_at == first
    check(assistant, origin="https://b.test")
    assert Assistant.objects.get(pk=assistant.pk).widget_seen_origin == "https://b.test"


# --- Getting started --------------------------------------------------------------------------------


def test_a_new_assistant_is_asked_for_its_website_straight_away(owner):
    team = make_team(owner)
    client = client_for(owner)
    response = client.post(
        f"/teams/{team.pk}/assistants/new/", {"name": "Docs", "primary_color": "#123456", "background_color": "#ffffff"}
    )
    assistant = Assistant.objects.get(name="Docs")
    assert response["Location"] == f"/assistants/{assistant.pk}/start/"
    html = client.get(response["Location"]).content.decode()
    assert 'name="url"' in html and "autofocus" in html and "Your website&#x27;s address" in html
    assert html.count('<li class="step') == 3 and 'class="step current" data-step="content"' in html


def test_the_website_starts_a_crawl_and_comes_back_to_the_checklist(owner, assistant):
    client = client_for(owner)
    response = client.post(f"/assistants/{assistant.pk}/start/", {"url": "docs.example.com"})
    assert response.status_code == 302 and response["Location"] == f"/assistants/{assistant.pk}/start/"
    source = Source.objects.get(assistant=assistant)
    assert source.url == "https://docs.example.com" and CrawlRun.objects.get(source=source).status == "queued"
    html = client.get(response["Location"]).content.decode()
    assert "Reading your content… 0 pages indexed so far." in html and 'name="url"' not in html


@pytest.mark.parametrize(
    "typed, message",
    [("not a url at all", "Enter a valid URL."), ("http://127.0.0.1:6379/", "That address cannot be crawled")],
)
def test_a_wrong_website_is_refused_at_its_field(owner, assistant, typed, message):
    response = client_for(owner).post(f"/assistants/{assistant.pk}/start/", {"url": typed})
    html = response.content.decode()
    assert response.status_code == 400 and not Source.objects.exists()
    error = re.search(r'<p class="field-error" id="id_url_error">(.*?)</p>', html)
    assert error and message in error.group(1)
    assert f'value="{typed}"' in html and 'aria-invalid="true"' in html


def progress(client, assistant):
    data = client.get(f"/assistants/{assistant.pk}/start/progress").json()
    return {step["key"]: step["done"] for step in data["steps"]}, data


def test_the_checklist_ticks_itself_from_real_state(owner, assistant):
    client = client_for(owner)
    steps, data = progress(client, assistant)
    assert steps == {"content": False, "tried": False, "installed": False} and data["current"] == "content"

    index_pages(assistant, {"http://docs.test/pricing/": PAGE})
    steps, data = progress(client, assistant)
    assert steps["content"] and data["current"] == "tried"
    assert data["steps"][0]["detail"] == "1 page indexed."
    source = Source.objects.get(assistant=assistant)  # listed under the steps, with its status
    assert data["sources"] == [{"id": source.pk, "status": "idle", "label": "Not crawled yet", "pages": "–"}]
    Source.objects.filter(pk=source.pk).update(status=Source.Status.READY)
    assert progress(client, assistant)[1]["sources"][0] | {"id": 0} == {
        "id": 0,
        "status": "ready",
        "label": "Ready",
        "pages": "–",
    }

    Conversation.objects.create(assistant=assistant, visitor_token="t" * 30)
    assert progress(client, assistant)[1]["current"] == "installed"

    assistant.allowed_domains = ["www.example.com"]
    assistant.save()
    check(assistant, origin="https://www.example.com")
    steps, data = progress(client, assistant)
    assert all(steps.values()) and data["complete"] and data["done"] == 3
    assert data["steps"][2]["detail"] == "Seen on https://www.example.com just now."
    page = client.get(f"/assistants/{assistant.pk}/").content.decode()
    assert "Getting started" not in page and "js/onboarding.js" not in page  # done: the checklist goes away


def test_the_assistants_page_shows_the_checklist_and_says_what_to_do_when_empty(owner, assistant):
    html = client_for(owner).get(f"/assistants/{assistant.pk}/").content.decode()
    assert "Getting started" in html and "0 of 3 done" in html and "js/onboarding.js" in html
    assert "No content yet" in html and "No conversations yet." in html
    assert f'href="/assistants/{assistant.pk}/install/"' in html


# --- The access-code page ---------------------------------------------------------------------------


@pytest.fixture
def internal(assistant):
    from assistants import services

    assistant.primary_color = "#ffdd00"
    assistant.logo_url = "https://cdn.acme.test/logo.png"
    assistant.save()
    return services.assistant_access_code_set(assistant=assistant, code="open-sesame")


def test_the_access_page_wears_the_brand_in_the_visitors_language(internal):
    html = Client().get(f"/a/{internal.slug}/", HTTP_ACCEPT_LANGUAGE="de-CH, fr;q=0.8").content.decode()
    assert '<html lang="de"' in html and "Dieser Assistent ist privat" in html and "Zugangscode" in html
    assert "--brand: #ffdd00;" in html and "--on-brand: #111827;" in html
    assert 'src="https://cdn.acme.test/logo.png"' in html
    assert "Acme" not in html  # still nothing of the assistant but its look


def test_the_access_page_speaks_the_assistants_language_and_says_a_wrong_code_in_it(internal):
    internal.language = "fr"
    internal.save()
    response = Client().post(f"/a/{internal.slug}/access", {"code": "wrong"}, HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert response.status_code == 403 and '<html lang="fr"' in html
    assert "Ce code d’accès n’est pas le bon." in html and 'aria-invalid="true"' in html
    embed = Client().get(f"/embed/{internal.public_key}/").content.decode()
    assert "Cet assistant est privé" in embed


def test_the_chat_derives_readable_colours_from_the_brand(assistant):
    assistant.primary_color = "#ffdd00"
    assistant.background_color = "#000000"
    assistant.save()
    html = Client().get(f"/a/{assistant.slug}/").content.decode()
    assert "--on-brand: #111827;" in html and 'data-surface="dark"' in html and "--text: #ffffff;" in html
