"""Markdown: one section per ATX heading (``#`` to ``######``), with markdown-it-py.

The source is split at the heading lines that markdown-it finds, so a ``# comment`` inside a
code block is not mistaken for a heading; code blocks and tables stay as Markdown text. The
anchor is the heading's GitHub-style slug ("Quick Start" -> ``quick-start``, repeats get
``-1``, ``-2``). The title is the first level-1 heading, else the file name.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from .text import decode_text, filename_title, one_line
from .types import ParsedDocument, Section

_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def parse(path: str, filename: str) -> ParsedDocument:
    with open(path, "rb") as file:
        source, _ = decode_text(file.read())
    lines = source.splitlines()
    headings = _headings(source)  # (line index, level, text)
    title = next((text for _, level, text in headings if level == 1), "") or filename_title(filename)

    sections = []
    stack: list[tuple[int, str]] = []
    slugs: dict[str, int] = {}
    boundaries = [start for start, _, _ in headings] + [len(lines)]
    preamble = "\n".join(lines[: boundaries[0]]).strip()
    if preamble:
        sections.append(Section(heading_path=[title], text=preamble))
    for (start, level, text), end in zip(headings, boundaries[1:]):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        path = [heading for _, heading in stack]
        if path[0] != title:
            path.insert(0, title)
        body = "\n".join(lines[start + 1 : end]).strip()
        anchor = _unique_slug(text, slugs)
        if body:
            sections.append(Section(heading_path=path, text=body, anchor=anchor))
    warnings = [] if sections else ["no text found in the document"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def _headings(source: str) -> list[tuple[int, int, str]]:
    """The document's ATX headings as (first line index, level, plain text)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    headings = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.markup.startswith("#") and token.level == 0:
            inline = tokens[index + 1]
            text = "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))
            headings.append((token.map[0], int(token.tag[1]), one_line(text)))
    return headings


def _unique_slug(text: str, seen: dict[str, int]) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    slug = _SLUG_DROP.sub("", text.lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug
