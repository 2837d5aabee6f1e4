"""Plain text: a single section under the file name, whitespace tidied, paragraphs kept."""

from __future__ import annotations

from .text import decode_text, filename_title, tidy
from .types import ParsedDocument, Section


def parse(path: str, filename: str) -> ParsedDocument:
    with open(path, "rb") as file:
        text, _ = decode_text(file.read())
    title = filename_title(filename)
    text = tidy(text)
    sections = [Section(heading_path=[title], text=text)] if text else []
    warnings = [] if text else ["no text found in the file"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)
