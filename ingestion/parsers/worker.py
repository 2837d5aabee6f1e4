"""What a sandboxed parser child does with one file (it is forked by zygote.py).

``handle`` takes the request (``path``, ``filename``, ``content_type``, ``memory_limit_mb``,
``cpu_seconds``, ``test_hooks``), limits the process's resources before it reads the file, and
returns the reply: ``{"document": {...}}`` or ``{"error": "reason"}``. This module imports every parser
and its libraries, so the zygote that imports it has them loaded once for all its children; nothing
here imports Django.

Limits: RLIMIT_AS caps the address space (allocations beyond it raise MemoryError);
RLIMIT_CPU stops a child that spins even if its parent has died (the parent enforces the
wall-clock limit by killing the child); RLIMIT_CORE 0 avoids core dumps; RLIMIT_FSIZE bounds
what the child can write to files, such as its stderr.

Test hooks, honoured only when the request's ``test_hooks`` is true (the caller's
CHATSITE_PARSER_TEST_HOOKS=1, see detect.py): a file starting with ``x-test-sleep`` sleeps,
``x-test-alloc`` allocates memory without end, and ``x-test-crash`` kills the child with SIGSEGV,
so tests can prove how the parent copes; a zip commented ``x-test-slow`` unpacks slowly (archives.py).
"""

from __future__ import annotations

import os
import resource
import signal
import time
import zipfile

from . import archives, md, pdf, plaintext, slides, spreadsheet, subtitles, web, word
from .detect import LABELS, TEST_HOOKS_ENV, detect_kind
from .safety import check_office_zip
from .types import ParsedDocument, ParseError

MAX_WRITTEN_BYTES = 64 * 1024 * 1024


def handle(request: dict) -> dict:
    """Limit this process, then parse the requested file (``{"document": ...}``) or, for ``"op": "unpack"``,
    unpack a zip of documents (``{"files": [...]}``, see archives.py); ``{"error": reason}`` on failure
    (in a forked child)."""
    os.environ[TEST_HOOKS_ENV] = "1" if request.get("test_hooks") else "0"
    unpack = request.get("op") == "unpack"
    written = request["max_member_bytes"] + 1 if unpack else MAX_WRITTEN_BYTES
    _limit_resources(request["memory_limit_mb"], request["cpu_seconds"], written)
    try:
        if unpack:
            limits = {name: request[name] for name in ("max_files", "max_member_bytes", "max_total_bytes")}
            return {"files": archives.unpack_zip(request["path"], request["dest"], **limits)}
        return {"document": parse_path(request["path"], request["filename"], request["content_type"]).to_dict()}
    except ParseError as error:
        return {"error": error.reason}
    except MemoryError:
        return {"error": f"parsing the file needs more than {request['memory_limit_mb']} MB of memory"}


def parse_path(path: str, filename: str, content_type: str) -> ParsedDocument:
    """Detect the file's type, run the safety checks for it and parse it (in this process)."""
    kind, warnings = detect_kind(path, filename, content_type)
    try:
        document = _parse_kind(kind, path, filename)
    except (ParseError, MemoryError):
        raise
    except RecursionError:
        raise ParseError("the file is nested too deeply to be read") from None
    except Exception as error:
        raise ParseError(
            f"the file could not be read as {LABELS[kind]}; it may be damaged "
            f"({type(error).__name__}: {str(error)[:200]})"
        ) from None
    document.warnings[:0] = warnings
    return document


def _parse_kind(kind: str, path: str, filename: str) -> ParsedDocument:
    if kind == "pdf":
        return pdf.parse(path, filename)
    if kind in ("docx", "pptx", "xlsx"):
        _check_office_file(path)
    if kind == "docx":
        return word.parse(path, filename)
    if kind == "pptx":
        return slides.parse(path, filename)
    if kind == "xlsx":
        return spreadsheet.parse_xlsx(path, filename)
    if kind == "csv":
        return spreadsheet.parse_csv(path, filename)
    if kind == "markdown":
        return md.parse(path, filename)
    if kind == "html":
        return web.parse(path, filename)
    if kind == "subtitles":
        return subtitles.parse(path, filename)
    if kind == "text":
        return plaintext.parse(path, filename)
    return _run_test_hook(kind)


def _check_office_file(path: str) -> None:
    with zipfile.ZipFile(path) as zf:
        check_office_zip(zf)


def _run_test_hook(kind: str) -> ParsedDocument:
    if kind == "x-test-sleep":
        time.sleep(3600)
    elif kind == "x-test-alloc":
        hog = []
        while True:
            hog.append(bytearray(64 * 1024 * 1024))
    elif kind == "x-test-crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    raise ParseError(f"no parser for {kind}")


def _limit_resources(memory_limit_mb: int, cpu_seconds: int, written_bytes: int = MAX_WRITTEN_BYTES) -> None:
    _lower_limit(resource.RLIMIT_AS, memory_limit_mb * 1024 * 1024)
    _lower_limit(resource.RLIMIT_CPU, cpu_seconds)
    _lower_limit(resource.RLIMIT_CORE, 0)
    _lower_limit(resource.RLIMIT_FSIZE, written_bytes)


def _lower_limit(which: int, value: int) -> None:
    """Set both soft and hard limits to ``value``, never above a hard limit already in force."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
