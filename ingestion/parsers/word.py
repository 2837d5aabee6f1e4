"""Word (.docx): sections under the headings (anchor ``section=N``), with python-docx.

Paragraph styles "Title" and "Heading 1".."Heading 9" build the heading path; the body is read
in document order (paragraphs and tables interleaved, content controls opened). Tables become
pipe tables whose first row is the header; a merged cell's text is repeated in every grid cell
it covers, and a table nested in a cell is written inline as ``a, b; c, d``.
"""

from __future__ import annotations

import re

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from .text import choose_title, one_line, pipe_table, tidy
from .types import ParsedDocument, Section

_HEADING_NAME = re.compile(r"^heading ([1-9])$", re.IGNORECASE)
_P, _TBL, _SDT, _SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")


def parse(path: str, filename: str) -> ParsedDocument:
    document = docx.Document(path)
    heading_levels = _heading_levels(document)
    title = choose_title(document.core_properties.title, filename)
    builder = _SectionBuilder(title)
    for element in _blocks(document.element.body):
        if element.tag == _TBL:
            builder.add_text(pipe_table(_table_rows(Table(element, document))))
            continue
        paragraph = Paragraph(element, document)
        text = tidy(paragraph.text)
        level = heading_levels.get(element.style)
        if level is not None and text:
            builder.start_heading(level, one_line(text))
        elif text:
            builder.add_text(f"- {text}" if _is_list_item(element) else text)
    sections = builder.finish()
    warnings = [] if sections else ["no text found in the document"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def _heading_levels(document) -> dict[str, int]:
    """Map paragraph style ids to heading levels: "Title" is 0, "Heading N" is N."""
    levels = {}
    for style in document.styles:
        if style.type != WD_STYLE_TYPE.PARAGRAPH:
            continue
        if style.name == "Title":
            levels[style.style_id] = 0
        elif match := _HEADING_NAME.match(style.name or ""):
            levels[style.style_id] = int(match.group(1))
    return levels


def _blocks(container):
    """Yield the paragraphs and tables of a body in order, looking inside content controls."""
    for child in container.iterchildren():
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag == _SDT:
            content = child.find(_SDT_CONTENT)
            if content is not None:
                yield from _blocks(content)


def _is_list_item(p_element) -> bool:
    return p_element.pPr is not None and p_element.pPr.numPr is not None


def _table_rows(table: Table) -> list[list[str]]:
    # row.cells repeats a merged cell across the grid columns and rows it spans.
    return [[_cell_text(cell._tc, table) for cell in row.cells] for row in table.rows]


def _cell_text(tc, parent) -> str:
    parts = []
    for element in _blocks(tc):
        if element.tag == _TBL:
            nested = _table_rows(Table(element, parent))
            parts.append("; ".join(", ".join(cell for cell in row if cell) for row in nested))
        else:
            parts.append(one_line(Paragraph(element, parent).text))
    return " ".join(part for part in parts if part)


class _SectionBuilder:
    """Collect text blocks under the current heading path; one section per heading."""

    def __init__(self, title: str):
        self.title = title
        self.headings: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.sections: list[Section] = []

    def start_heading(self, level: int, text: str) -> None:
        self._flush()
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))

    def add_text(self, text: str) -> None:
        if text:
            self.blocks.append(text)

    def finish(self) -> list[Section]:
        self._flush()
        return self.sections

    def _flush(self) -> None:
        if self.blocks:
            path = [text for _, text in self.headings]
            if not path or path[0] != self.title:
                path.insert(0, self.title)
            # anchor: the section's number, so that a citation opens the readable view at it
            anchor = f"section={len(self.sections) + 1}"
            self.sections.append(Section(heading_path=path, text="\n\n".join(self.blocks), anchor=anchor))
        self.blocks = []
