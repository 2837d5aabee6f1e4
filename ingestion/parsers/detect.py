"""Find a file's real type from its content (magic bytes), not only from its name.

Policy: the content wins. A ``.pdf`` that is really a Word document is parsed as a Word document,
and a warning notes the mismatch. Content of a type we do not support (images, archives, old
binary Office files, other binaries) is refused with a clear reason, whatever the extension.
Text files carry no magic, so among text types (CSV, Markdown, plain text) the extension or the
content type decides, except that anything that looks like HTML is parsed as HTML.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import PurePath

from .types import ParseError

# What each kind is called in messages for the user.
LABELS = {
    "pdf": "a PDF document",
    "docx": "a Word document",
    "pptx": "a PowerPoint presentation",
    "xlsx": "an Excel workbook",
    "csv": "a CSV table",
    "markdown": "a Markdown document",
    "html": "an HTML page",
    "text": "a text file",
    "subtitles": "a subtitle file",
}
TEXT_KINDS = {"csv", "markdown", "html", "text", "subtitles"}
SUPPORTED = (
    "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, Markdown, HTML, subtitles (.vtt, .srt) and text files"
)

_BY_EXTENSION = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".docm": "docx",
    ".pptx": "pptx",
    ".pptm": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".vtt": "subtitles",
    ".srt": "subtitles",
}
_BY_CONTENT_TYPE = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "text/vtt": "subtitles",
    "application/x-subrip": "subtitles",
}
# Main-part content types in [Content_Types].xml, searched in this order.
_OFFICE_MAIN_TYPES = [
    (b"wordprocessingml.document.main", "docx"),
    (b"ms-word.document.macroEnabled.main", "docx"),
    (b"presentationml.presentation.main", "pptx"),
    (b"ms-powerpoint.presentation.macroEnabled.main", "pptx"),
    (b"spreadsheetml.sheet.main", "xlsx"),
    (b"ms-excel.sheet.macroEnabled.main", "xlsx"),
]
_UNSUPPORTED_MAGIC = [
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "old binary Office files (.doc, .xls, .ppt) are not supported: save it as .docx, .xlsx or .pptx",
    ),
    (b"{\\rtf", "RTF documents are not supported: save it as .docx or PDF"),
    (b"\x89PNG", "the file is a PNG image; images are not supported"),
    (b"\xff\xd8\xff", "the file is a JPEG image; images are not supported"),
    (b"GIF8", "the file is a GIF image; images are not supported"),
    (b"\x1f\x8b", "the file is a gzip archive; archives are not supported"),
    (b"7z\xbc\xaf\x27\x1c", "the file is a 7-Zip archive; archives are not supported"),
    (b"Rar!", "the file is a RAR archive; archives are not supported"),
]
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
HEAD_BYTES = 8192
# Test hooks (see worker.py): recognised only when this environment variable is "1".
TEST_HOOKS_ENV = "CHATSITE_PARSER_TEST_HOOKS"
TEST_HOOK_KINDS = ("x-test-sleep", "x-test-alloc", "x-test-crash")


def hooks_enabled() -> bool:
    """Whether this process honours the test hooks (worker.py, archives.py)."""
    return os.environ.get(TEST_HOOKS_ENV) == "1"


def declared_kind(filename: str, content_type: str = "") -> str | None:
    """The kind that the file name's extension (or else the content type) claims."""
    by_extension = _BY_EXTENSION.get(PurePath(filename).suffix.lower())
    return by_extension or _BY_CONTENT_TYPE.get(content_type.split(";")[0].strip().lower())


def detect_kind(path: str, filename: str, content_type: str = "") -> tuple[str, list[str]]:
    """Return ``(kind, warnings)`` for the file, or raise ParseError if it is not supported.

    Zip-based Office files are identified by opening the archive, so call this in the sandboxed
    child process, after nothing else has touched the file.
    """
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
    if hooks_enabled():
        for hook in TEST_HOOK_KINDS:
            if head.startswith(hook.encode()):
                return hook, []
    declared = declared_kind(filename, content_type)
    actual = _kind_from_content(path, head, declared)
    warnings = []
    if declared and actual != declared and not (actual in TEXT_KINDS and declared in TEXT_KINDS):
        extension = PurePath(filename).suffix.lower() or "declared type"
        warnings.append(
            f"the file's content is {LABELS[actual]}, not what its {extension} extension says; "
            f"it was read as {LABELS[actual]}"
        )
    return actual, warnings


def _kind_from_content(path: str, head: bytes, declared: str | None) -> str:
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _office_kind(path)
    for magic, reason in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise ParseError(reason)
    if b"\x00" in head and not head.startswith(_UTF16_BOMS):
        raise ParseError(f"the file is not a type we can read; supported types are {SUPPORTED}")
    if _HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "html"
    if head.removeprefix(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return "subtitles"
    return declared if declared in TEXT_KINDS else "text"


def _office_kind(path: str) -> str:
    """Tell a .docx, .pptx or .xlsx from another zip by its main part's content type."""
    try:
        with zipfile.ZipFile(path) as zf:
            if "[Content_Types].xml" not in zf.namelist():
                raise ParseError("the file is a zip archive, not an Office document; archives are not supported")
            with zf.open("[Content_Types].xml") as member:
                content_types = member.read(1024 * 1024)
    except zipfile.BadZipFile:
        raise ParseError("the file is a damaged zip archive (Office documents are zip archives)") from None
    for marker, kind in _OFFICE_MAIN_TYPES:
        if marker in content_types:
            return kind
    raise ParseError(f"the file is an Office document of a kind we cannot read; supported types are {SUPPORTED}")
