"""The shapes every parser produces, shared with the web extractor and the chunker.

These are plain dataclasses (no Django) so that the parser child process can build them and
send them back to the parent as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Section:
    """A run of text under one heading.

    ``heading_path`` starts with the document title when it is known, e.g.
    ``["Annual report", "Results", "Q2"]``. ``text`` is plain text; tables are rendered as
    Markdown-style pipe tables with their header row. ``anchor`` says where a citation should
    point: ``"page=3"`` (PDF, 1-based), ``"slide=2"``, ``"sheet=Sales&row=10"``, ``"row=10"``
    (CSV), a heading slug (Markdown), or ``""``.
    """

    heading_path: list[str]
    text: str
    anchor: str = ""

    def as_dict(self) -> dict:
        """What ``Document.sections`` stores and the chunker reads."""
        return asdict(self)


@dataclass
class ParsedDocument:
    """A parsed file: its title, its sections in document order, and warnings for the user."""

    title: str
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ParsedDocument:
        return cls(
            title=data["title"],
            sections=[Section(**section) for section in data["sections"]],
            warnings=list(data["warnings"]),
        )


class ParseError(Exception):
    """The file could not be parsed; ``reason`` is one clear sentence for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
