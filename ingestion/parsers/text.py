"""Small text helpers shared by the format parsers."""

from __future__ import annotations

import re
from pathlib import PurePath

_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Titles that authoring tools fill in by themselves and that say nothing about the document.
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled.*|document\d*|presentation\d*|powerpoint presentation|slide \d+|"
    r"microsoft (?:word|powerpoint|excel) - .*|sheet\d*|book\d*)$",
    re.IGNORECASE,
)


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) into single spaces."""
    return " ".join(text.split())


def tidy(text: str) -> str:
    """Normalise spaces within lines and runs of blank lines, keeping line structure."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0b", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def filename_title(filename: str) -> str:
    """A readable title from a file name: ``"annual-report_2023.pdf"`` -> ``"annual-report_2023"``."""
    return PurePath(filename).stem.strip() or filename


def choose_title(candidate: str | None, filename: str) -> str:
    """The document's own title unless it is empty or a tool's placeholder, else the file name."""
    candidate = one_line(candidate or "")
    if candidate and not _PLACEHOLDER_TITLE.match(candidate):
        return candidate
    return filename_title(filename)


def pipe_table(rows: list[list[str]]) -> str:
    """Render rows as a Markdown pipe table; the first row is the header row.

    Short rows are padded; cell text is put on one line and ``|`` is escaped.
    """
    rows = [[one_line(cell).replace("|", "\\|") for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding: BOM, then UTF-8, then cp1252, then Latin-1.

    Returns ``(text, encoding)``. Latin-1 accepts any byte, so this never fails.
    """
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"
