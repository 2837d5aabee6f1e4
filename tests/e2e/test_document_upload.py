"""Uploading documents in the dashboard: a real worker parses, chunks and embeds them; a bad
file fails on its own with a reason, and answers cite the document (PDF pages included)."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client

from ingestion.models import CrawlRun, Document
from tests.conftest import SHARED, wait_for
from tests.factories import make_assistant, make_team, make_user
from tests.ingestion.parsers.test_hostile import WORD_CONTENT_TYPES
from tests.sse import ask, citations

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = SHARED / "docs"
GOOD = ["layout-parser-paper-with-table.pdf", "stanley-cups.csv", "docx-tables.docx", "sample-presentation.pptx"]


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", WORD_CONTENT_TYPES)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            zeros = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(zeros)
    return buffer.getvalue()


def test_uploaded_documents_are_indexed_and_cited(celery_worker_process, settings):
    owner = make_user()
    assistant = make_assistant(make_team(owner))
    browser = Client()
    browser.force_login(owner)
    files = [SimpleUploadedFile(name, (DOCS / name).read_bytes()) for name in GOOD]
    files += [
        SimpleUploadedFile("report.docx", zip_bomb()),
        SimpleUploadedFile("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n% truncated"),
    ]
    response = browser.post(f"/assistants/{assistant.pk}/documents/", {"files": files})
    assert response.status_code == 302
    run = CrawlRun.objects.get(source__assistant=assistant)
    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == "done", timeout=600, message="documents indexed")

    documents = {d.file_name: d for d in Document.objects.filter(source__assistant=assistant)}
    assert {name: documents[name].status for name in GOOD} == dict.fromkeys(GOOD, "ready")
    assert all(documents[name].chunk_count > 0 for name in GOOD)
    assert documents["report.docx"].status == "failed" and "zip bomb" in documents["report.docx"].error
    assert documents["broken.pdf"].status == "failed" and documents["broken.pdf"].error
    assert all(
        d.file_path and d.file_path.startswith("uploads/") and d.file_name not in d.file_path
        for d in documents.values()
        if d.file_path
    )

    events, _ = ask(assistant.slug, "How many Stanley Cups have the Maple Leafs won?", client=AsyncClient())
    cited = citations(events)
    assert any("stanley-cups.csv" in c["url"] for c in cited), cited

    events, _ = ask(
        assistant.slug, "What is LayoutParser, the toolkit for document image analysis?", client=AsyncClient()
    )
    cited = citations(events)
    pdf = [c for c in cited if "layout-parser-paper-with-table.pdf" in c["url"]]
    assert pdf and "#page=" in pdf[0]["url"], cited

    # The citation's link opens the stored file, inline, and it cannot run as a page of ours.
    path = pdf[0]["url"].split(settings.SITE_URL, 1)[1].split("#")[0]
    opened = Client().get(path)
    assert opened.status_code == 200 and opened["Content-Type"] == "application/pdf"
    assert b"".join(opened.streaming_content).startswith(b"%PDF")
    assert "sandbox" in opened["Content-Security-Policy"]
    assert Client().get("/d/not-a-token/x.pdf").status_code == 404
