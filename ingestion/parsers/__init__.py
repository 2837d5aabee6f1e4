"""Turn uploaded files into sections of text for the chunker, safely.

Public API::

    from ingestion.parsers import ParsedDocument, ParseError, Section, parse_file, parse_files

    document = parse_file(path, filename="report.pdf")   # raises ParseError(reason)
    results = parse_files([(path, "a.docx"), (path2, "b.xlsx")])  # ParsedDocument | ParseError each

Supported: PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, Markdown, HTML, subtitles
(.vtt, .srt; sections anchored at ``t=SECONDS``), plain text.
Every file is parsed in a child process with memory, CPU and time limits, forked from a warm zygote
that has the parsers imported (sandbox.py, zygote.py, worker.py);
its type comes from its content (detect.py); Office zips are checked for zip bombs and XML DTDs
first (safety.py); one small module per format does the parsing. This package never imports
Django.
"""

from .sandbox import parse_file, parse_files, unpack_archive
from .types import ParsedDocument, ParseError, Section

__all__ = ["ParsedDocument", "ParseError", "Section", "parse_file", "parse_files", "unpack_archive"]
