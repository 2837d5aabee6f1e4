"""A citation of a Word, PowerPoint or Excel file opens a readable page of its text at the cited
part (escaped), with a link that downloads the original; other files are served as before."""

import io

import docx
import openpyxl
import pptx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ingestion import services
from ingestion.models import Document
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def word_file() -> bytes:
    document = docx.Document()
    document.add_heading("Returns", level=1)
    document.add_paragraph("Return any item within 30 days for a full refund.")
    document.add_heading("Shipping", level=1)
    document.add_paragraph(f"Parcels leave the warehouse every morning. {HOSTILE}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def slides_file() -> bytes:
    deck = pptx.Presentation()
    for title, body in (("Welcome", "Our product in one slide."), ("Pricing", f"Nine euros a month. {HOSTILE}")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def workbook_file() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Price list"
    sheet.append(["Plan", "Price"])
    sheet.append(["Basic", "9 euros"])
    sheet.append(["Pro", HOSTILE])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def uploaded(assistant, name: str, content: bytes, capture) -> Document:
    source = services.source_documents_get_or_create(assistant=assistant)
    with capture(execute=True):
        run = services.documents_upload(source=source, files=[SimpleUploadedFile(name, content)])
    return Document.objects.get(last_run=run)


@pytest.mark.parametrize(
    ("name", "build", "anchor", "phrase"),
    [
        ("policy.docx", word_file, "section=2", "Parcels leave the warehouse"),
        ("deck.pptx", slides_file, "slide=2", "Nine euros a month"),
        ("prices.xlsx", workbook_file, "sheet=Price%20list&row=", "Basic"),
    ],
)
def test_an_office_file_opens_as_readable_text_at_its_parts(
    settings, tmp_path, eager_tasks, django_capture_on_commit_callbacks, name, build, anchor, phrase
):
    settings.MEDIA_ROOT = str(tmp_path)
    document = uploaded(make_assistant(), name, build(), django_capture_on_commit_callbacks)
    assert document.status == "ready", document.error
    response = Client().get(f"/d/{document.public_token}/{document.file_name}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert f'id="{anchor.replace("&", "&amp;")}' in html and phrase in html  # the DOM id is the anchor
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert (
        "script-src" not in response["Content-Security-Policy"]
        and "default-src 'none'" in response["Content-Security-Policy"]
    )
    assert f'href="/d/{document.public_token}/{document.file_name}?download=1"' in html
    original = Client().get(f"/d/{document.public_token}/{document.file_name}?download=1")
    assert original["Content-Type"] == "application/octet-stream"
    assert original["Content-Disposition"].startswith("attachment")
    assert b"".join(original.streaming_content).startswith(b"PK\x03\x04")  # the zip the team uploaded
    section = next(s for s in document.sections if phrase in s["text"])
    assert section["anchor"].startswith(anchor.split("&")[0])


def test_a_cited_slide_links_to_its_part_of_the_page(
    settings, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    from assistants.answering.retrieval import retrieve

    settings.MEDIA_ROOT = str(tmp_path)
    assistant = make_assistant()
    document = uploaded(assistant, "deck.pptx", slides_file(), django_capture_on_commit_callbacks)
    hits = retrieve(assistant, "How much does it cost a month?")
    link = next(hit.link for hit in hits if "Nine euros" in hit.text)
    assert link.endswith(f"/d/{document.public_token}/deck.pptx#slide=2")


# Office files added by their address (downloaded by the worker from a real server on loopback) are
# cited as the same readable page, on the platform, by a token signed from their id.


@pytest.fixture
def office_site(tmp_path, settings):
    from tests.servers import serve_directory

    settings.OUTBOUND_ALLOW_PRIVATE = True  # the file server is on loopback
    settings.MEDIA_ROOT = str(tmp_path / "media")
    folder = tmp_path / "site"
    folder.mkdir()
    for name, build in (("policy.docx", word_file), ("deck.pptx", slides_file), ("prices.xlsx", workbook_file)):
        (folder / name).write_bytes(build())
    server, url = serve_directory(folder)
    yield folder, url
    server.shutdown()


def added_by_address(assistant, url: str) -> Document:
    from ingestion.tasks import document_prepare_task

    document = services.document_add_url(assistant=assistant, url=url)
    document_prepare_task(document.pk)
    document.refresh_from_db()
    assert document.status == "ready", document.error
    assert document.added_by_url and document.url == url and not document.public_token
    return document


@pytest.mark.parametrize(
    ("name", "question", "anchor", "phrase"),
    [
        ("policy.docx", "When do parcels leave the warehouse?", "section=2", "Parcels leave the warehouse"),
        ("deck.pptx", "How much does it cost a month?", "slide=2", "Nine euros a month"),
        ("prices.xlsx", "What does the Basic plan cost?", "sheet=Price%20list&row=", "Basic"),
    ],
)
def test_an_office_file_added_by_its_address_is_cited_as_its_readable_page(
    office_site, eager_tasks, name, question, anchor, phrase
):
    from urllib.parse import urlsplit

    from assistants.answering.retrieval import retrieve

    folder, base = office_site
    assistant = make_assistant()
    document = added_by_address(assistant, f"{base}/{name}")

    hit = next(hit for hit in retrieve(assistant, question) if phrase in hit.text)
    assert hit.document_id == document.pk
    link = urlsplit(hit.link)
    assert hit.url == f"{base}/{name}"  # the document's key stays its address (downloaded again from it)
    assert not hit.link.startswith(base) and link.path.startswith("/d/v") and link.path.endswith(f"/{name}")
    assert link.fragment.startswith(anchor)

    response = Client().get(link.path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert f'id="{anchor.replace("&", "&amp;")}' in html and phrase in html  # the cited part, by its id
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert f'href="{base}/{name}"' in html  # where it was added from
    assert f'href="{link.path}?download=1"' in html
    original = Client().get(f"{link.path}?download=1")
    assert original["Content-Type"] == "application/octet-stream"
    assert original["Content-Disposition"].startswith("attachment")
    assert b"".join(original.streaming_content) == (folder / name).read_bytes()  # the file it downloaded


def test_the_readable_page_of_a_file_added_by_address_takes_only_its_own_token(
    office_site, eager_tasks, django_capture_on_commit_callbacks
):
    from ingestion.models import view_token

    _, base = office_site
    document = added_by_address(make_assistant(), f"{base}/deck.pptx")
    token = view_token(document.pk)
    assert Client().get(f"/d/{token}/deck.pptx").status_code == 200
    forged = f"v{document.pk}-{token.split('-', 1)[1][::-1]}"
    for wrong in (forged, f"v{document.pk}-", f"v{document.pk}", token.replace(f"v{document.pk}-", "v0-")):
        assert Client().get(f"/d/{wrong}/deck.pptx").status_code == 404, wrong
    # An upload keeps its own link: the signed form does not open it.
    upload = uploaded(make_assistant(), "deck.pptx", slides_file(), django_capture_on_commit_callbacks)
    assert Client().get(f"/d/{view_token(upload.pk)}/deck.pptx").status_code == 404


def test_a_pdf_added_by_address_is_still_cited_at_its_address(office_site, eager_tasks, tmp_path):
    import shutil

    from assistants.answering.retrieval import retrieve
    from tests.conftest import SHARED

    folder, base = office_site
    shutil.copy(SHARED / "docs" / "layout-parser-paper-with-table.pdf", folder / "paper.pdf")
    assistant = make_assistant()
    document = added_by_address(assistant, f"{base}/paper.pdf")
    assert document.cited_url == document.url
    hits = retrieve(assistant, "layout detection models")
    assert hits and all(hit.link.startswith(f"{base}/paper.pdf") for hit in hits)


def test_a_file_being_downloaded_again_sends_its_citation_to_its_address(office_site, eager_tasks):
    from urllib.parse import urlsplit

    _, base = office_site
    document = added_by_address(make_assistant(), f"{base}/policy.docx")
    link = document.cited_url
    Document.objects.filter(pk=document.pk).update(file_path="", sections=[])  # as a reindex leaves it
    response = Client().get(urlsplit(link).path)
    assert response.status_code == 302 and response["Location"] == f"{base}/policy.docx"


def test_an_internal_assistants_file_added_by_address_opens_for_its_visitors_only(office_site, eager_tasks):
    from urllib.parse import urlsplit

    from django.contrib.auth.hashers import make_password

    _, base = office_site
    assistant = make_assistant()
    assistant.access_code_hash = make_password("open-sesame-42")
    assistant.save()
    link = urlsplit(added_by_address(assistant, f"{base}/deck.pptx").cited_url).path
    stranger = Client()
    refused = stranger.get(link)
    assert refused.status_code == 403 and "Nine euros" not in refused.content.decode()
    assert stranger.get(f"{link}?download=1").status_code == 403
    stranger.post(f"/a/{assistant.slug}/access?next={link}", {"code": "open-sesame-42"})
    assert "Nine euros a month" in stranger.get(link).content.decode()
