"""Documents added by their address: downloaded through the SSRF-safe client by the task, parsed in
the sandbox like uploads, cited at their own address, refused or failed with a reason."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from ingestion import services
from ingestion.models import Document, Source
from ingestion.tasks import document_prepare_task
from tests.conftest import SHARED
from tests.factories import make_assistant, make_team, make_user
from tests.servers import serve_directory

pytestmark = pytest.mark.django_db

PDF = "layout-parser-paper-with-table.pdf"


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(SHARED / "docs" / PDF, folder / PDF)
    (folder / "notes.md").write_text("# Opening hours\n\nThe Lisbon shop opens at nine every weekday.\n")
    server, url = serve_directory(folder)
    yield folder, url
    server.shutdown()


@pytest.fixture
def private_ok(settings, eager_tasks):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the file server is on loopback


def test_a_pdf_by_url_is_downloaded_parsed_and_cited_at_its_address(files, private_ok):
    folder, base = files
    assistant = make_assistant()
    document = services.document_add_url(assistant=assistant, url=f"{base}/{PDF}")
    assert document.source.kind == Source.Kind.DOCUMENT and document.added_by_url and document.status == "pending"

    document_prepare_task(document.pk)

    document.refresh_from_db()
    assert document.status == "ready", document.error
    assert document.chunk_count > 0 and document.url == f"{base}/{PDF}"
    stored = Path(django_settings.MEDIA_ROOT) / document.file_path
    assert stored.read_bytes() == (folder / PDF).read_bytes() and stored.name != PDF  # a generated name
    anchors = {section["anchor"] for section in document.sections}
    assert "page=1" in anchors  # a citation opens the original address at its page
    document.last_run.refresh_from_db()
    assert document.last_run.status == "done"


def test_adding_the_same_address_again_downloads_it_anew(files, private_ok, django_capture_on_commit_callbacks):
    folder, base = files
    assistant = make_assistant()
    document = services.document_add_url(assistant=assistant, url=f"{base}/notes.md")
    document_prepare_task(document.pk)
    document.refresh_from_db()
    first_file = Path(django_settings.MEDIA_ROOT) / document.file_path
    assert "nine" in document.sections[0]["text"]

    (folder / "notes.md").write_text("# Opening hours\n\nThe Lisbon shop now opens at ten.\n")
    with django_capture_on_commit_callbacks(execute=True):  # the old file goes once the change commits
        again = services.document_add_url(assistant=assistant, url=f"{base}/notes.md")
    assert again.pk == document.pk and again.status == "pending"
    document_prepare_task(again.pk)
    again.refresh_from_db()
    assert again.status == "ready" and "ten" in again.sections[0]["text"]
    assert not first_file.exists() and Document.objects.filter(source__assistant=assistant).count() == 1

    (folder / "notes.md").write_text("# Opening hours\n\nClosed in August.\n")
    services.document_reindex(document=again)  # reindexing downloads it anew too
    document_prepare_task(again.pk)
    again.refresh_from_db()
    assert again.status == "ready" and "August" in again.sections[0]["text"]


@pytest.mark.parametrize(
    "path, reason",
    [("missing.pdf", "answered HTTP 404")],
)
def test_an_unreadable_address_fails_that_document_with_a_reason(files, private_ok, path, reason):
    _, base = files
    assistant = make_assistant()
    broken = services.document_add_url(assistant=assistant, url=f"{base}/{path}")
    document_prepare_task(broken.pk)
    broken.refresh_from_db()
    assert broken.status == "failed" and reason in broken.error and broken.chunk_count == 0


def test_a_private_address_is_refused_by_the_outbound_client(files, settings, eager_tasks):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    _, base = files
    document = services.document_add_url(assistant=make_assistant(), url=f"{base}/notes.md")
    document_prepare_task(document.pk)
    document.refresh_from_db()
    assert document.status == "failed" and "may not be fetched" in document.error and not document.file_path


@pytest.mark.parametrize("url", ["ftp://example.com/a.pdf", "javascript:alert(1)", "not a url", "", "https://"])
def test_only_web_addresses_are_accepted(url):
    with pytest.raises(services.IngestionError, match="http or https"):
        services.document_add_url(assistant=make_assistant(), url=url)
    assert not Document.objects.exists()


def test_the_dashboard_adds_a_document_by_url_for_its_own_team_only():
    owner = make_user()
    assistant = make_assistant(make_team(owner), "Docs")
    stranger = make_assistant(make_team(make_user()), "Theirs")
    client = Client()
    client.force_login(owner)
    page = client.get(f"/assistants/{assistant.pk}/").content.decode()
    assert f'action="/assistants/{assistant.pk}/documents/url/"' in page
    response = client.post(f"/assistants/{assistant.pk}/documents/url/", {"url": "https://example.com/guide.pdf"})
    document = Document.objects.get(source__assistant=assistant)
    assert response.status_code == 302 and response["Location"] == f"/sources/{document.source_id}/"
    assert document.file_name == "guide.pdf" and document.url == "https://example.com/guide.pdf"
    refused = client.post(f"/assistants/{assistant.pk}/documents/url/", {"url": "file:///etc/passwd"}, follow=True)
    assert "http or https" in refused.content.decode()
    assert client.post(f"/assistants/{stranger.pk}/documents/url/", {"url": "https://x.test/a.pdf"}).status_code == 404
    assert Document.objects.count() == 1
