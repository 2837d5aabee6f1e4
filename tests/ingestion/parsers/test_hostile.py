"""Broken, disguised and hostile files fail with a clear reason, and never hurt the caller."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from pypdf import PdfReader, PdfWriter

from ingestion.parsers import ParsedDocument, ParseError, parse_file, parse_files

from .conftest import doc, make_pdf, rewrite_zip, text_pdf

WORD_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def reason(path, filename=None, **options) -> str:
    with pytest.raises(ParseError) as raised:
        parse_file(path, filename=filename or path.name, **options)
    return raised.value.reason


def test_empty_file(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    assert reason(tmp_path / "empty.pdf") == "the file is empty"


def test_oversize_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as file:
        file.truncate(50 * 1024 * 1024 + 1)  # sparse: costs no disk
    assert reason(big) == "the file is larger than the 50 MB limit"
    (tmp_path / "small.txt").write_text("x" * (2**20 + 1))
    assert reason(tmp_path / "small.txt", max_bytes=2**20) == "the file is larger than the 1 MB limit"


def test_zip_bomb_disguised_as_docx(tmp_path):
    bomb = tmp_path / "bomb.docx"
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", WORD_CONTENT_TYPES)
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(zeros)
    assert bomb.stat().st_size < 5 * 1024 * 1024
    assert reason(bomb) == "the archive expands to more than 200 MB (zip bomb?)"


def test_overcompressed_member_is_refused(tmp_path):
    path = rewrite_zip(doc("stanley-cups.xlsx"), tmp_path / "dense.xlsx", {"xl/media/padding.bin": bytes(20 * 2**20)})
    assert reason(path) == "a part of the archive is compressed more than 100 times (zip bomb?)"


def test_docx_with_billion_laughs_dtd(tmp_path):
    with zipfile.ZipFile(doc("docx-tables.docx")) as zf:
        document_xml = zf.read("word/document.xml")
    laughs = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (level, (b"&lol%s;" % (b"" if level == 1 else b"%d" % (level - 1))) * 10)
        for level in range(1, 10)
    )
    header, body = document_xml.split(b"?>", 1)
    hostile = header + b"?><!DOCTYPE w:document [" + laughs + b"]>" + body.replace(b"Lorem ipsum", b"&lol9;")
    path = rewrite_zip(doc("docx-tables.docx"), tmp_path / "laughs.docx", {"word/document.xml": hostile})
    assert reason(path) == "the document contains an XML DTD or entity declaration, which Office files never need"


def test_xlsx_with_external_entity_in_a_renamed_part(tmp_path):
    """A DTD hidden in a part whose name does not end in .xml is still found."""
    with zipfile.ZipFile(doc("stanley-cups.xlsx")) as zf:
        content_types = zf.read("[Content_Types].xml")
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    content_types = content_types.replace(
        b"</Types>", b'<Default Extension="dat" ContentType="application/xml"/></Types>'
    )
    path = rewrite_zip(
        doc("stanley-cups.xlsx"), tmp_path / "xxe.xlsx", {"[Content_Types].xml": content_types, "xl/extra.dat": xxe}
    )
    assert "DTD" in reason(path)


def test_truncated_and_corrupt_pdfs(tmp_path):
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    assert reason(tmp_path / "garbage.pdf").startswith(("the file is not a valid PDF", "the file could not be read"))
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(doc("multi-column.pdf").read_bytes()[:30_000])
    try:
        document, failure = parse_file(truncated, filename="truncated.pdf"), ""
    except ParseError as error:
        document, failure = None, error.reason
    if document is None:
        assert "PDF" in failure
    else:  # pypdf may recover the pages it can read
        assert len(document.sections) < 13


def test_pdf_with_a_looping_page_tree(tmp_path):
    looping = make_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",  # the /Pages node is its own kid
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )
    (tmp_path / "loop.pdf").write_bytes(looping)
    started = time.monotonic()
    assert "cyclic" in reason(tmp_path / "loop.pdf", time_limit=10)
    assert time.monotonic() - started < 10


def test_encrypted_pdfs(tmp_path):
    def encrypted(user_password):
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf("Hello secret world"))))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()

    (tmp_path / "open.pdf").write_bytes(encrypted(""))
    assert parse_file(tmp_path / "open.pdf", filename="open.pdf").sections[0].text == "Hello secret world"
    (tmp_path / "locked.pdf").write_bytes(encrypted("secret"))
    assert reason(tmp_path / "locked.pdf") == "the PDF is protected by a password"


def test_pdf_without_a_text_layer_warns(tmp_path):
    blank = make_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )
    (tmp_path / "scan.pdf").write_bytes(blank)
    document = parse_file(tmp_path / "scan.pdf", filename="scan.pdf")
    assert document.sections == []
    assert document.warnings == ["little text found: the file may be a scanned image without a text layer"]


def test_wrong_extension_is_parsed_as_what_it_really_is(tmp_path):
    (tmp_path / "report.pdf").write_bytes(doc("docx-tables.docx").read_bytes())
    document = parse_file(tmp_path / "report.pdf", filename="report.pdf")
    assert "| Header Col 1 | Header Col 2 |" in document.sections[0].text
    assert document.warnings == [
        "the file's content is a Word document, not what its .pdf extension says; it was read as a Word document"
    ]

    (tmp_path / "page.docx").write_text(
        "<!DOCTYPE html><html><head><title>Opening hours</title></head><body>"
        "<article><h1>Opening hours</h1><p>" + "We open at nine every weekday. " * 5 + "</p></article></body></html>"
    )
    page = parse_file(tmp_path / "page.docx", filename="page.docx")
    assert page.title == "Opening hours"
    assert "We open at nine" in page.sections[0].text
    assert "an HTML page, not what its .docx extension says" in page.warnings[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "the file is a PNG image; images are not supported"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old binary Office files"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "the file is not a type we can read"),
    ],
)
def test_unsupported_content_is_refused_whatever_its_extension(tmp_path, content, expected):
    (tmp_path / "notes.docx").write_bytes(content)
    assert reason(tmp_path / "notes.docx").startswith(expected)


def test_plain_zip_is_not_an_office_document(tmp_path):
    with zipfile.ZipFile(tmp_path / "archive.xlsx", "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert reason(tmp_path / "archive.xlsx").startswith("the file is a zip archive, not an Office document")


def test_time_limit_kills_the_child(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATSITE_PARSER_TEST_HOOKS", "1")
    (tmp_path / "slow.txt").write_bytes(b"x-test-sleep")
    started = time.monotonic()
    assert reason(tmp_path / "slow.txt", time_limit=1.5) == "parsing took longer than 1.5 s"
    assert time.monotonic() - started < 5


def test_memory_limit_stops_the_child(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATSITE_PARSER_TEST_HOOKS", "1")
    (tmp_path / "hungry.txt").write_bytes(b"x-test-alloc")
    assert reason(tmp_path / "hungry.txt", memory_limit_mb=300) == "parsing the file needs more than 300 MB of memory"


def test_a_crashing_child_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATSITE_PARSER_TEST_HOOKS", "1")
    (tmp_path / "crash.txt").write_bytes(b"x-test-crash")
    assert reason(tmp_path / "crash.txt") == "the parser crashed on this file (SIGSEGV)"


def test_test_hooks_are_off_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CHATSITE_PARSER_TEST_HOOKS", raising=False)
    (tmp_path / "slow.txt").write_bytes(b"x-test-sleep")
    assert parse_file(tmp_path / "slow.txt", filename="slow.txt", time_limit=10).sections[0].text == "x-test-sleep"


@pytest.mark.parametrize("hooks", ["1", None])
def test_the_slow_unpacking_hook_pauses_only_when_test_hooks_are_on(tmp_path, monkeypatch, hooks):
    """A zip commented ``x-test-slow`` pauses before each member for the kill tests; never in production."""
    from ingestion.parsers import archives

    if hooks:
        monkeypatch.setenv("CHATSITE_PARSER_TEST_HOOKS", hooks)
    else:
        monkeypatch.delenv("CHATSITE_PARSER_TEST_HOOKS", raising=False)
    pauses = []
    monkeypatch.setattr(archives.time, "sleep", pauses.append)
    with zipfile.ZipFile(tmp_path / "slow.zip", "w") as archive:
        archive.comment = b"x-test-slow"
        for n in range(3):
            archive.writestr(f"note-{n}.md", f"Note {n}")
    (tmp_path / "out").mkdir()
    files = archives.unpack_zip(
        str(tmp_path / "slow.zip"), str(tmp_path / "out"), max_files=10, max_member_bytes=1024, max_total_bytes=4096
    )
    assert [item["name"] for item in files] == ["note-0.md", "note-1.md", "note-2.md"]
    assert pauses == ([archives.SLOW_HOOK_SECONDS] * 3 if hooks else [])


def test_batch_returns_each_file_its_own_result(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "fake.pdf").write_bytes(b"%PDF-1.4\nnot really")
    (tmp_path / "photo.docx").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    files = [
        (doc("stanley-cups.csv"), "stanley-cups.csv"),
        (tmp_path / "empty.csv", "empty.csv"),
        (doc("sample-presentation.pptx"), "sample-presentation.pptx"),
        (tmp_path / "fake.pdf", "fake.pdf"),
        (tmp_path / "photo.docx", "photo.docx"),
        (tmp_path / "missing.md", "missing.md"),
    ]
    results = parse_files(files, max_workers=2)
    assert [type(result) for result in results] == [
        ParsedDocument,
        ParseError,
        ParsedDocument,
        ParseError,
        ParseError,
        ParseError,
    ]
    assert results[0].sections[0].text.startswith("Team: Blues")
    assert results[2].sections[1].heading_path[-1] == "This is the first content slide"
    assert results[1].reason == "the file is empty"
    assert "PDF" in results[3].reason
    assert results[4].reason == "the file is a JPEG image; images are not supported"
    assert results[5].reason == "the file could not be found"
