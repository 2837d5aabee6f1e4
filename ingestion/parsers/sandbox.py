"""Run a parser in a child process with memory, CPU and wall-clock limits.

Each file is parsed by a fresh ``python -m ingestion.parsers.worker`` (see worker.py): a
hostile or broken file can exhaust the child's memory, hang it or crash it, and the caller
only ever sees a ParsedDocument or a ParseError with a clear reason.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .types import ParsedDocument, ParseError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# The directory that holds the ``ingestion`` package, so the child can import the worker.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


def parse_file(path: str | Path, *, filename: str, content_type: str = "", time_limit: float = 60,
               memory_limit_mb: int = 1024, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedDocument:
    """Parse one file into sections, in a sandboxed child process.

    ``filename`` is the name the user gave the file (its extension is a hint; the content
    decides, see detect.py) and ``content_type`` the declared MIME type, if any. Raises
    ParseError, whose ``reason`` is one sentence for the user, when the file is empty, larger
    than ``max_bytes``, of an unsupported type, damaged, hostile, slower than ``time_limit``
    seconds or hungrier than ``memory_limit_mb``.
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        raise ParseError("the file could not be found") from None
    if size == 0:
        raise ParseError("the file is empty")
    if size > max_bytes:
        raise ParseError(f"the file is larger than the {max_bytes / 2**20:g} MB limit")
    request = {
        "path": str(Path(path).resolve()),
        "filename": filename,
        "content_type": content_type,
        "memory_limit_mb": memory_limit_mb,
        "cpu_seconds": math.ceil(time_limit) + 1,
    }
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_IMPORT_ROOT, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([sys.executable, "-m", "ingestion.parsers.worker"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=stderr, cwd=_IMPORT_ROOT, env=env)
        try:
            output, _ = process.communicate(json.dumps(request).encode(), timeout=time_limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise ParseError(f"parsing took longer than {time_limit:g} s") from None
        reply = _read_reply(output)
        if reply is None:
            stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 2000))
            logger.warning("parser child for %r exited with %s: %s", filename, process.returncode,
                           stderr.read().decode(errors="replace"))
            raise ParseError(_failure_reason(process.returncode, request))
    if "error" in reply:
        raise ParseError(reply["error"])
    return ParsedDocument.from_dict(reply["document"])


def parse_files(files: Iterable[tuple[str | Path, str]], *, max_workers: int = 2,
                **options) -> list[ParsedDocument | ParseError]:
    """Parse ``(path, filename)`` pairs, ``max_workers`` at a time, each in its own child.

    Returns one result per file, in order: a ParsedDocument, or the ParseError saying why that
    file failed. ``options`` are passed on to parse_file.
    """
    def parse_one(item):
        path, filename = item
        try:
            return parse_file(path, filename=filename, **options)
        except ParseError as error:
            return error

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(parse_one, files))


def _read_reply(output: bytes) -> dict | None:
    try:
        reply = json.loads(output)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) and ("error" in reply or "document" in reply) else None


def _failure_reason(returncode: int, request: dict) -> str:
    """Why the child died without a reply, in words."""
    if returncode == -signal.SIGXCPU:
        return f"parsing used more than {request['cpu_seconds']} s of processor time"
    if returncode == -signal.SIGKILL:
        return f"the parser was stopped, probably for needing more than {request['memory_limit_mb']} MB of memory"
    if returncode < 0:
        return f"the parser crashed on this file ({signal.Signals(-returncode).name})"
    return "the parser crashed on this file"
