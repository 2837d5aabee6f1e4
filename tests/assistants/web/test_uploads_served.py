"""What the platform serves of what teams upload, and what it keeps (security finding 12): only PDFs and
text are shown inline, everything else is an opaque download; files go with their assistant."""

import contextlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from ingestion import services
from ingestion.models import Document
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db


def upload(assistant, name: str, content: bytes) -> Document:
    source = services.source_documents_get_or_create(assistant=assistant)
    run = services.documents_upload(source=source, files=[SimpleUploadedFile(name, content)])
    return Document.objects.get(last_run=run)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("payload.js", b"alert(document.cookie)"),
        ("page.html", b"<script>alert(1)</script>"),
        ("image.svg", b"<svg onload=alert(1)></svg>"),
        ("slides.pptx", b"PK\x03\x04not really"),
    ],
)
def test_anything_but_pdf_and_text_is_an_opaque_download(name, content):
    document = upload(make_assistant(), name, content)
    response = Client().get(f"/d/{document.public_token}/{document.file_name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert (
        "script-src 'none'" in response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"
    )


def test_a_pdf_and_text_are_shown_inline_in_a_sandbox():
    assistant = make_assistant()
    for name, content, kind in (("guide.pdf", b"%PDF-1.4 x", "application/pdf"), ("notes.md", b"# Hi", "text/plain")):
        document = upload(assistant, name, content)
        response = Client().get(f"/d/{document.public_token}/{document.file_name}")
        assert response["Content-Type"].startswith(kind) and response["Content-Disposition"].startswith("inline")
        assert response["Content-Security-Policy"].startswith("sandbox")


def test_the_full_page_has_a_content_security_policy():
    assistant = make_assistant()
    response = Client().get(f"/a/{assistant.slug}/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"].startswith("'self'") and policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'" and "unsafe-eval" not in response["Content-Security-Policy"]


def test_files_go_with_their_assistant_and_stay_when_the_deletion_rolls_back(django_capture_on_commit_callbacks):
    assistant = make_assistant()
    document = upload(assistant, "guide.pdf", b"%PDF-1.4 x")
    path = Path(settings.MEDIA_ROOT) / document.file_path
    assert path.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        with contextlib.suppress(RuntimeError), transaction.atomic():
            assistant.delete()
            raise RuntimeError("rolled back")
    assert path.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        assistant.team.delete()  # the team, its assistant, sources and documents: a cascade
    assert not path.exists()


def test_an_internal_assistants_documents_open_for_its_visitors_and_team_only():
    """Security finding 12: the /d/ links of an internal assistant used to ignore its access code."""
    from django.contrib.auth.hashers import make_password

    from tests.factories import make_team, make_user

    owner = make_user()
    assistant = make_assistant(make_team(owner), "Internal Help")
    assistant.access_code_hash = make_password("open-sesame-42")
    assistant.save()
    document = upload(assistant, "handbook.pdf", b"%PDF-1.4 x")
    link = f"/d/{document.public_token}/{document.file_name}"
    stranger = Client()
    refused = stranger.get(link)
    assert refused.status_code == 403 and b"%PDF" not in refused.content and "Access code" in refused.content.decode()
    unlocked = stranger.post(f"/a/{assistant.slug}/access?next={link}", {"code": "open-sesame-42"})
    assert unlocked.status_code == 302 and unlocked["Location"] == link  # back to the document
    assert stranger.get(link).status_code == 200
    wrong_next = Client().post(f"/a/{assistant.slug}/access?next=https://evil.example/", {"code": "open-sesame-42"})
    assert wrong_next["Location"] == f"/a/{assistant.slug}/"  # no open redirect
    team = Client()
    team.force_login(owner)
    assert team.get(link).status_code == 200
    outsider = Client()
    outsider.force_login(make_user())
    assert outsider.get(link).status_code == 403
