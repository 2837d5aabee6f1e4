"""The documents list of an assistant: search, filters, pagination, the columns a team needs, and
delete, reindex and retry; a failed file fails alone; Q&A and snippets reachable from the navigation."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ingestion import selectors, services
from ingestion.models import Document, Source
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


def website(assistant, count: int) -> Source:
    source = Source.objects.create(assistant=assistant, url="https://docs.example.com/", name="Docs")
    Document.objects.bulk_create(
        Document(
            source=source,
            url=f"https://docs.example.com/page-{n:03}/",
            title=f"Page {n:03}",
            status=Document.Status.READY,
            chunk_count=3,
        )
        for n in range(count)
    )
    return source


def test_the_list_searches_filters_and_pages(crew_assistant):
    crew, assistant = crew_assistant
    source = website(assistant, 120)
    Document.objects.create(
        source=source, url="https://docs.example.com/refunds/", title="Refund policy", status="failed", error="HTTP 500"
    )
    client = signed_in(crew.user("member"))
    first = client.get(f"/assistants/{assistant.pk}/content/").content.decode()
    assert "121 documents" in first and "page 1 of 3" in first
    assert first.index("Refund policy") < first.index("Page 000"), "failed documents come first"
    assert "HTTP 500" in first and "Web page" in first and 'rel="next"' in first
    third = client.get(f"/assistants/{assistant.pk}/content/?page=3").content.decode()
    assert "Page 119" in third and "Page 000" not in third
    found = client.get(f"/assistants/{assistant.pk}/content/", {"q": "page-04"}).content.decode()
    assert "10 documents match" in found and "Page 049" in found and "Page 050" not in found
    failed = client.get(f"/assistants/{assistant.pk}/content/", {"status": "failed"}).content.decode()
    assert "1 document match" in failed and "Refund policy" in failed
    assert "Retry" not in failed, "a member reads the list but has no actions"


def test_actions_delete_reindex_and_retry(crew_assistant, django_capture_on_commit_callbacks):
    crew, assistant = crew_assistant
    source = website(assistant, 2)
    page, other = Document.objects.filter(source=source).order_by("url")
    broken = Document.objects.create(
        source=source, url="https://docs.example.com/broken/", title="Broken", status="failed", error="boom", attempts=3
    )
    client = signed_in(crew.user("admin"))
    listing = f"/assistants/{assistant.pk}/content/?q=broken"
    html = client.get(listing).content.decode()
    assert f'action="/documents/{broken.pk}/retry"' in html and f'action="/documents/{broken.pk}/delete"' in html
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/documents/{broken.pk}/retry", {"next": listing})
    assert response.status_code == 302 and response["Location"] == listing
    broken.refresh_from_db()
    assert (broken.status, broken.error, broken.attempts) == ("pending", "", 0) and len(queued) == 1
    client.post(f"/documents/{page.pk}/reindex")
    page.refresh_from_db()
    assert page.status == "pending"
    response = client.post(f"/documents/{other.pk}/retry", follow=True)
    assert "has not failed" in response.content.decode()
    response = client.post(f"/documents/{other.pk}/delete", {"next": "https://evil.example/"})
    assert response["Location"] == f"/assistants/{assistant.pk}/content/"
    assert not Document.objects.filter(pk=other.pk).exists()
    assert signed_in(crew.user("member")).post(f"/documents/{page.pk}/delete").status_code == 403
    assert signed_in(crew.user("outsider")).post(f"/documents/{page.pk}/delete").status_code == 404


def test_one_failed_file_does_not_fail_the_uploads_source(
    settings, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    assistant = make_assistant()
    source = services.source_documents_get_or_create(assistant=assistant)
    files = [
        SimpleUploadedFile("hours.md", b"# Opening hours\n\nWe open at nine every day, weekends included."),
        SimpleUploadedFile("broken.docx", b"PK\x03\x04 not a real Word file"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        run = services.documents_upload(source=source, files=files)
    run.refresh_from_db()
    source.refresh_from_db()
    documents = {d.file_name: d for d in source.documents.all()}
    assert documents["hours.md"].status == "ready" and documents["broken.docx"].status == "failed"
    assert documents["broken.docx"].error
    assert run.status == "done" and source.status == "ready" and source.error == ""
    assert run.pages_found == run.pages_fetched + run.pages_skipped + run.pages_failed == 2
    settings.UPLOAD_MAX_BYTES = 1000
    with django_capture_on_commit_callbacks(execute=True):  # one file, too large: stored nowhere, failed alone
        alone = services.documents_upload(source=source, files=[SimpleUploadedFile("huge.pdf", b"%PDF" * 500)])
    source.refresh_from_db()
    assert alone.pk != run.pk and (alone.pages_fetched, alone.pages_failed) == (0, 1)
    assert source.status == "ready", "the other files still answer"
    Document.objects.filter(source=source, file_name="hours.md").delete()
    services.run_finish_if_indexed(run_id=alone.pk)
    assert selectors.documents_counts(assistant_id=assistant.pk)["failed"] == 2


def test_every_file_failing_fails_the_uploads_source(
    settings, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    source = services.source_documents_get_or_create(assistant=make_assistant())
    with django_capture_on_commit_callbacks(execute=True):
        services.documents_upload(source=source, files=[SimpleUploadedFile("broken.pptx", b"PK\x03\x04 no")])
    source.refresh_from_db()
    assert source.status == "failed" and "no file could be read" in source.error


def test_qa_and_documents_are_in_the_assistant_navigation(crew_assistant):
    crew, assistant = crew_assistant
    client = signed_in(crew.user("member"))
    for path in (
        f"/assistants/{assistant.pk}/",
        f"/assistants/{assistant.pk}/content/",
        f"/assistants/{assistant.pk}/library/",
    ):
        html = client.get(path).content.decode()
        nav = html.split('aria-label="Assistant pages"', 1)[1].split("</nav>", 1)[0]
        assert (
            f'href="/assistants/{assistant.pk}/library/"' in nav
            and f'href="/assistants/{assistant.pk}/content/"' in nav
        )


def test_a_file_refused_for_its_size_cannot_be_retried(crew_assistant, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.UPLOAD_MAX_BYTES = 100
    crew, assistant = crew_assistant
    source = services.source_documents_get_or_create(assistant=assistant)
    run = services.documents_upload(source=source, files=[SimpleUploadedFile("huge.pdf", b"%PDF" * 100)])
    document = Document.objects.get(last_run=run)
    response = signed_in(crew.user("admin")).post(f"/documents/{document.pk}/retry", follow=True)
    assert "was never stored" in response.content.decode()
    document.refresh_from_db()
    assert document.status == "failed"


def test_retry_all_failed_queues_each_failed_document_that_can_be(crew_assistant, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.UPLOAD_MAX_BYTES = 100
    crew, assistant = crew_assistant
    source = website(assistant, 1)
    for n in range(3):
        Document.objects.create(
            source=source, url=f"https://docs.example.com/bad-{n}/", title=f"Bad {n}", status="failed"
        )
    uploads = services.source_documents_get_or_create(assistant=assistant)
    services.documents_upload(source=uploads, files=[SimpleUploadedFile("huge.pdf", b"%PDF" * 100)])
    client = signed_in(crew.user("admin"))
    assert "Retry 4 failed" in client.get(f"/assistants/{assistant.pk}/content/").content.decode()
    response = client.post(f"/assistants/{assistant.pk}/content/retry-failed/", follow=True)
    assert "3 failed documents are queued" in response.content.decode()
    assert Document.objects.filter(status="pending").count() == 3
    assert Document.objects.get(file_name="huge.pdf").status == "failed"
    assert signed_in(crew.user("member")).post(f"/assistants/{assistant.pk}/content/retry-failed/").status_code == 403


def test_a_refused_zip_fails_its_run_but_not_the_files_uploaded_before(
    settings, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    settings.MEDIA_ROOT = str(tmp_path)
    source = services.source_documents_get_or_create(assistant=make_assistant())
    with django_capture_on_commit_callbacks(execute=True):
        services.documents_upload(source=source, files=[SimpleUploadedFile("hours.md", b"# Hours\n\nWe open at nine.")])
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"\0" * (12 * 1024 * 1024))
    bomb.seek(0)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.documents_upload_zip(source=source, archive=bomb)
    run.refresh_from_db()
    source.refresh_from_db()
    assert run.status == "failed" and "zip" in run.error
    assert source.status == "ready" and "zip" in source.error  # said, while the earlier file still answers
