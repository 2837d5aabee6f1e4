"""Fixtures for the parser tests: the shared real documents and builders of hostile files.

The real documents live outside the repository, in ``docs/`` of the shared evaluation data
(``SHARED_DATA_DIR``, see ``chatsite.env.shared_data_dir``), and are read in place, never
copied. No test here touches the database.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingestion.parsers import parse_file
from tests.conftest import SHARED

DOCS = SHARED / "docs"


def doc(name: str) -> Path:
    return DOCS / name


def parse_doc(name: str, **options):
    return parse_file(doc(name), filename=name, **options)


def find_section(document, phrase: str):
    """The first section whose text contains ``phrase`` (fails the test if there is none)."""
    for section in document.sections:
        if phrase in section.text:
            return section
    pytest.fail(f"{phrase!r} not found in any section")


def make_pdf(objects: list[bytes]) -> bytes:
    """A PDF from raw object bodies (object 1 must be the catalog), with a correct xref table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def text_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` in Helvetica."""
    stream = b"BT /F1 12 Tf 72 712 Td (%s) Tj ET" % text.encode("latin-1")
    return make_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> Path:
    """Copy an Office zip to ``target`` with members replaced or added (``{name: content}``)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in original.namelist():
            copy.writestr(name, replace.get(name, original.read(name)))
        for name in replace.keys() - set(original.namelist()):
            copy.writestr(name, replace[name])
    return target


@pytest.fixture(scope="module")
def handbook():
    """The 872-page DOCX, parsed once per module."""
    return parse_doc("handbook-872p.docx")
