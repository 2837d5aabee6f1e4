"""Website sources from the dashboard, the API and ``add_source``: created without a crawl, edited
(address, include / exclude patterns, sitemap, caps, schedule, rendering), recrawled and deleted with
their documents; form errors at their field with the form kept as typed."""

import pytest
from django.core.management import call_command
from django.test import Client

from assistants.api.keys import api_key_create
from ingestion.models import CrawlRun, Document, Source
from tests.assistants.api.conftest import Api, assert_error
from tests.factories import make_assistant
from tests.roles import make_crew

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew_assistant():
    crew = make_crew()
    return crew, make_assistant(team=crew.team)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


FORM = {
    "url": "https://docs.example.com/help/",
    "max_pages": "50",
    "max_depth": "3",
    "schedule": "weekly",
    "include": "/help/*\n/pricing/",
    "exclude": "/help/old/*\n*?print=*",
    "sitemap_url": "https://docs.example.com/help/sitemap.xml",
}


def test_a_source_is_saved_without_crawling_and_with_its_patterns(crew_assistant):
    crew, assistant = crew_assistant
    response = signed_in(crew.user("admin")).post(f"/assistants/{assistant.pk}/sources/new/", FORM | {"crawl": "0"})
    source = Source.objects.get(assistant=assistant)
    assert response.status_code == 302 and response["Location"] == f"/sources/{source.pk}/"
    assert source.status == "idle" and source.last_run is None and not CrawlRun.objects.exists()
    assert source.schedule == "weekly"
    assert source.settings == {
        "max_pages": 50,
        "max_depth": 3,
        "include": ["/help/*", "/pricing/"],
        "exclude": ["/help/old/*", "*?print=*"],
        "sitemap_url": "https://docs.example.com/help/sitemap.xml",
    }


def test_add_and_crawl_queues_the_crawl(crew_assistant):
    crew, assistant = crew_assistant
    signed_in(crew.user("owner")).post(f"/assistants/{assistant.pk}/sources/new/", FORM | {"crawl": "1"})
    assert Source.objects.get(assistant=assistant).last_run.status == "queued"


def test_editing_a_source_changes_its_settings_and_keeps_its_documents(crew_assistant):
    crew, assistant = crew_assistant
    source = Source.objects.create(
        assistant=assistant, url="https://docs.example.com/", name="https://docs.example.com/"
    )
    Document.objects.create(source=source, url="https://docs.example.com/a/", title="A")
    client = signed_in(crew.user("admin"))
    page = client.get(f"/sources/{source.pk}/edit/").content.decode()
    assert 'name="include"' in page and 'name="exclude"' in page and 'name="sitemap_url"' in page
    response = client.post(
        f"/sources/{source.pk}/edit/", FORM | {"render_javascript": "on", "whole_site": "on", "crawl": "0"}
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.url == source.name == "https://docs.example.com/help/"
    assert source.settings["include"] == ["/help/*", "/pricing/"] and source.settings["render_javascript"] is True
    assert source.settings["whole_site"] is True and source.last_run is None
    assert source.documents.count() == 1
    edit = client.get(f"/sources/{source.pk}/edit/").content.decode()
    assert "/help/old/*\n*?print=*</textarea>" in edit and 'name="whole_site" id="id_whole_site" checked' in edit
    client.post(f"/sources/{source.pk}/edit/", FORM | {"crawl": "1"})
    source.refresh_from_db()
    assert source.last_run.status == "queued" and "whole_site" not in source.settings


def test_form_errors_appear_at_their_field_and_the_form_keeps_what_was_typed(crew_assistant):
    crew, assistant = crew_assistant
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/")
    bad = FORM | {"include": "docs/*", "sitemap_url": "https://elsewhere.example.org/sitemap.xml", "max_pages": "0"}
    response = signed_in(crew.user("admin")).post(f"/sources/{source.pk}/edit/", bad)
    assert response.status_code == 400
    html = response.content.decode()
    for field, message in (
        ("include", "must start with / or *"),
        ("sitemap_url", "same site"),
        ("max_pages", "greater than or equal to 1"),
    ):
        block = html.split(f'data-field="{field}"', 1)[1].split('data-field="', 1)[0]
        assert "field-error" in block and message in block, field
    assert ">\ndocs/*</textarea>" in html and 'value="https://docs.example.com/help/"' in html
    source.refresh_from_db()
    assert source.url == "https://docs.example.com/" and "include" not in source.settings


def test_a_bad_address_on_the_assistant_page_errs_at_its_field_and_keeps_the_form(crew_assistant):
    crew, assistant = crew_assistant
    response = signed_in(crew.user("admin")).post(
        f"/assistants/{assistant.pk}/sources/new/", FORM | {"url": "not a url", "exclude": "/blog/*"}
    )
    html = response.content.decode()
    assert response.status_code == 400 and "Enter the address of a website" in html.split('data-field="url"')[1]
    assert "/blog/*</textarea>" in html and not Source.objects.exists()


def test_deleting_a_source_needs_the_confirmation_and_takes_its_documents(crew_assistant):
    crew, assistant = crew_assistant
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/")
    for path in ("a", "b"):
        Document.objects.create(source=source, url=f"https://docs.example.com/{path}/", title=path)
    client = signed_in(crew.user("admin"))
    assert "Yes, delete" in client.get(f"/sources/{source.pk}/").content.decode()
    response = client.post(f"/sources/{source.pk}/delete/", follow=True)
    assert Source.objects.filter(pk=source.pk).exists() and "Tick the box" in response.content.decode()
    response = client.post(f"/sources/{source.pk}/delete/", {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == f"/assistants/{assistant.pk}/"
    assert not Source.objects.filter(pk=source.pk).exists() and not Document.objects.exists()


def test_a_member_reads_the_settings_but_cannot_change_or_delete(crew_assistant):
    crew, assistant = crew_assistant
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/")
    client = signed_in(crew.user("member"))
    page = client.get(f"/sources/{source.pk}/edit/").content.decode()
    assert "disabled" in page and "Save and crawl now" not in page
    assert client.post(f"/sources/{source.pk}/edit/", FORM).status_code == 403
    assert client.post(f"/sources/{source.pk}/delete/", {"confirm": "yes"}).status_code == 403
    assert Source.objects.filter(pk=source.pk, url="https://docs.example.com/").exists()


def test_the_api_creates_edits_and_deletes_a_source_with_its_patterns():
    assistant = make_assistant()
    _, raw = api_key_create(team=assistant.team, name="ops", scopes=["read", "write"])
    api = Api(raw)
    created = api.post(
        f"/assistants/{assistant.pk}/sources",
        {"url": "https://docs.example.com/help/", "include": ["/help/*"], "exclude": ["*?print=*"], "crawl": False},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["settings"]["include"] == ["/help/*"] and body["progress"]["run"] is None
    source_id = body["id"]
    changed = api.patch(f"/sources/{source_id}", {"exclude": ["/help/old/*"], "whole_site": True, "max_depth": 2})
    assert changed.status_code == 200, changed.content
    settings = changed.json()["settings"]
    assert settings["include"] == ["/help/*"] and settings["exclude"] == ["/help/old/*"]
    assert settings["whole_site"] is True and settings["max_depth"] == 2
    details = assert_error(api.patch(f"/sources/{source_id}", {"include": ["docs"]}), 400, "validation_failed")
    assert "include" in details
    assert_error(api.patch(f"/sources/{source_id}", {"color": "red"}), 400, "invalid_request")
    Document.objects.create(source_id=source_id, url="https://docs.example.com/help/a/", title="A")
    assert api.delete(f"/sources/{source_id}").status_code == 204
    assert not Source.objects.exists() and not Document.objects.exists()


def test_add_source_takes_patterns_and_may_leave_the_crawl_for_later():
    assistant = make_assistant()
    call_command(
        "add_source",
        assistant.slug,
        "https://docs.example.com/help/",
        "--include",
        "/help/*",
        "--exclude",
        "/help/old/*",
        "--exclude",
        "*?print=*",
        "--whole-site",
        "--no-crawl",
    )
    source = Source.objects.get(assistant=assistant)
    assert source.settings["include"] == ["/help/*"] and source.settings["exclude"] == ["/help/old/*", "*?print=*"]
    assert source.settings["whole_site"] is True and source.last_run is None
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must start with"):
        call_command("add_source", assistant.slug, "https://docs.example.com/", "--exclude", "blog")


def test_a_scheduled_source_saved_without_crawling_waits_for_its_first_crawl(crew_assistant):
    from ingestion import services

    crew, assistant = crew_assistant
    signed_in(crew.user("admin")).post(f"/assistants/{assistant.pk}/sources/new/", FORM | {"crawl": "0"})
    source = Source.objects.get(assistant=assistant)
    assert source.schedule == "weekly" and source not in services.sources_due_for_recrawl()
    run = services.source_crawl_start(source=source)
    CrawlRun.objects.filter(pk=run.pk).update(status="done", finished_at="2020-01-01T00:00:00Z")
    assert source in services.sources_due_for_recrawl()


def test_the_source_page_sums_up_its_scope_with_the_server_defaults(crew_assistant, settings):
    settings.CRAWL_MAX_PAGES, settings.CRAWL_MAX_DEPTH = 321, 4
    crew, assistant = crew_assistant
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/help/", settings={})
    html = signed_in(crew.user("member")).get(f"/sources/{source.pk}/").content.decode()
    assert "pages under this address · at most 321 pages, 4 links away · only when asked" in html
    Source.objects.filter(pk=source.pk).update(settings={"include": ["/help/*"], "exclude": ["/help/old/*"]})
    html = signed_in(crew.user("member")).get(f"/sources/{source.pk}/").content.decode()
    assert "only /help/* · never /help/old/*" in html
