"""Subtitles (WebVTT ``.vtt``, SubRip ``.srt``): the spoken text in sections of about a minute.

Each section starts at a cue and its anchor is ``t=SECONDS`` (the Media Fragments syntax that
video players and YouTube links understand), so a citation points at the moment in the video;
its heading says the time as ``h:mm:ss``. Cue settings, styling tags and speaker voice tags are
dropped; consecutive identical lines (rolling captions repeat them) are kept once. The title is the
text after ``WEBVTT`` on a WebVTT file's first line (``WEBVTT - Pricing explained``), else the
file name.
"""

from __future__ import annotations

import re

from .text import decode_text, filename_title, one_line
from .types import ParsedDocument, ParseError, Section

SECTION_SECONDS = 60  # a new section starts at the first cue after this much time …
SECTION_CHARS = 1200  # … or once the section holds this much text
_TIMING = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_TAG = re.compile(r"<[^>]*>")


def seconds(stamp: str) -> float:
    """``01:02:03.500`` / ``02:03,5`` → seconds."""
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def clock(value: float) -> str:
    whole = int(value)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def cues(text: str) -> list[tuple[float, str]]:
    """(start in seconds, text) of every cue, in file order."""
    found = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    for block in blocks:
        lines = block.strip().split("\n")
        for index, line in enumerate(lines):
            timing = _TIMING.match(line)
            if timing:
                spoken = one_line(" ".join(_TAG.sub("", cue_line) for cue_line in lines[index + 1 :]))
                if spoken:
                    found.append((seconds(timing.group(1)), spoken))
                break
    return found


def header_title(text: str) -> str:
    """The text after ``WEBVTT`` on the first line of a WebVTT file ("" when none)."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if not re.match(r"WEBVTT[ \t]", first):
        return ""
    return one_line(first[6:]).strip(" -")


def parse(path: str, filename: str) -> ParsedDocument:
    with open(path, "rb") as file:
        text, _ = decode_text(file.read())
    timed = cues(text)
    if not timed and "-->" not in text:
        raise ParseError("the file has no subtitle cues (lines like '00:00:01.000 --> 00:00:04.000')")
    title = header_title(text) or filename_title(filename)
    sections: list[Section] = []
    start, lines, size = None, [], 0
    for at, spoken in timed:
        if lines and spoken == lines[-1]:
            continue
        if start is not None and (at - start >= SECTION_SECONDS or size >= SECTION_CHARS):
            sections.append(_section(title, start, lines))
            start, lines, size = None, [], 0
        if start is None:
            start = at
        lines.append(spoken)
        size += len(spoken) + 1
    if lines:
        sections.append(_section(title, start, lines))
    warnings = [] if sections else ["the subtitles hold no text"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def _section(title: str, start: float, lines: list[str]) -> Section:
    return Section(heading_path=[title, clock(start)], text=" ".join(lines), anchor=f"t={int(start)}")
