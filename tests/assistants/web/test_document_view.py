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
