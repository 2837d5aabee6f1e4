"""PowerPoint (.pptx): one section per slide (anchor ``slide=N``), with python-pptx.

The heading is the slide's title (its first line; any further lines of an overlong title go into
the text), or "Slide N" when there is none. Shapes are read top to bottom, left to right, groups
opened; tables become pipe tables; speaker notes are appended under a "Notes:" label.
"""

from __future__ import annotations

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE

from .text import choose_title, one_line, pipe_table, tidy
from .types import ParsedDocument, Section


def parse(path: str, filename: str) -> ParsedDocument:
    presentation = pptx.Presentation(path)
    title = choose_title(presentation.core_properties.title, filename)
    sections = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title_lines = tidy(title_shape.text_frame.text).split("\n") if title_shape is not None else []
        heading = one_line(title_lines[0]) if title_lines and title_lines[0] else f"Slide {number}"
        blocks = ["\n".join(title_lines[1:]).strip()]
        blocks += [_shape_text(shape) for shape in _reading_order(slide.shapes) if shape != title_shape]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = tidy(slide.notes_slide.notes_text_frame.text)
            blocks.append(f"Notes: {notes}" if notes else "")
        text = "\n\n".join(block for block in blocks if block)
        if text or title_shape is not None:
            sections.append(Section(heading_path=[title, heading], text=text, anchor=f"slide={number}"))
    warnings = [] if any(section.text for section in sections) else ["no text found in the presentation"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def _reading_order(shapes):
    return sorted(shapes, key=lambda shape: (shape.top or 0, shape.left or 0))


def _shape_text(shape) -> str:
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return "\n\n".join(text for text in map(_shape_text, _reading_order(shape.shapes)) if text)
    if shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return pipe_table(rows)
    if shape.has_text_frame:
        return tidy(shape.text_frame.text)
    return ""
