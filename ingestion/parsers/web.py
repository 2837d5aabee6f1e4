"""HTML files: the same main-content extraction as crawled pages (``ingestion.parsers.html``)."""

from __future__ import annotations

from ingestion.parsers.html import extract_page

from .text import choose_title
from .types import ParsedDocument


def parse(path: str, filename: str) -> ParsedDocument:
    with open(path, "rb") as file:
        html = file.read().decode("utf-8", errors="replace")
    page = extract_page(html, "")
    title = choose_title(page.title or None, filename)
    warnings = [] if page.sections else ["no readable text found in the page"]
    return ParsedDocument(title=title, sections=page.sections, warnings=warnings)
