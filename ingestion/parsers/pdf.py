"""PDF: one section per page (anchor ``page=N``), with pypdf.

Headings are not recovered from PDFs, so every section's heading path is just the title.
Damaged cross-reference tables are repaired (``strict=False``); files encrypted with an empty
user password are opened; looping page trees are caught by pypdf and, failing that, by the
sandbox's time limit.
"""

from __future__ import annotations

import logging

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from .text import choose_title, tidy
from .types import ParsedDocument, ParseError, Section

# Fewer characters than this per page on average suggests pages that are images of text.
MIN_CHARS_PER_PAGE = 40


def parse(path: str, filename: str) -> ParsedDocument:
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("the PDF is protected by a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata_title = reader.metadata.title if reader.metadata else None
    except (FileNotDecryptedError, DependencyError):
        raise ParseError("the PDF is encrypted and cannot be opened") from None
    except PdfReadError as error:
        raise ParseError(f"the file is not a valid PDF or is damaged ({error})") from None
    title = choose_title(metadata_title if isinstance(metadata_title, str) else None, filename)
    sections = [
        Section(heading_path=[title], text=text, anchor=f"page={number}")
        for number, text in enumerate((tidy(page) for page in pages), start=1)
        if text
    ]
    warnings = []
    if not pages:
        warnings.append("the PDF has no pages")
    elif sum(len(section.text) for section in sections) < MIN_CHARS_PER_PAGE * len(pages):
        warnings.append("little text found: the file may be a scanned image without a text layer")
    return ParsedDocument(title=title, sections=sections, warnings=warnings)
