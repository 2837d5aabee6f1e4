"""Unpacking a zip of documents, in a sandboxed child (``worker.handle`` with ``"op": "unpack"``).

Everything about the archive is checked from its central directory before a byte is extracted: the
number of files, their declared total, each member's compression ratio (a zip bomb is refused whole).
Members are then extracted one by one, streamed in pieces into files named by the caller's directory and
a random name, counting the bytes really written (never trusting the declared sizes): a member larger than
``max_member_bytes`` is cut off, deleted and reported, and the total stops at ``max_total_bytes``. A
member's path is never used as a path: only its last part names the document; members under hidden
folders, macOS resource forks and paths that climb (``..``) are skipped. Nothing here imports Django.

Test hook, honoured only with CHATSITE_PARSER_TEST_HOOKS=1 (see worker.py): an archive whose comment starts
with ``x-test-slow`` waits ``SLOW_HOOK_SECONDS`` before each member, so a test can kill the worker mid-way.
"""

from __future__ import annotations

import secrets
import time
import zipfile
from pathlib import Path, PurePosixPath

from .detect import hooks_enabled
from .types import ParseError

CHUNK = 1024 * 1024
MAX_RATIO = 100  # a member over RATIO_CHECK_BYTES may not be compressed more than this
RATIO_CHECK_BYTES = 10 * 1024 * 1024
SLOW_HOOK_SECONDS = 0.2


def _wanted(member: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(member.filename.replace("\\", "/")).parts
    return (
        not member.is_dir()
        and bool(parts)
        and ".." not in parts
        and not any(part.startswith((".", "__MACOSX")) for part in parts)
    )


def unpack_zip(path: str, dest: str, *, max_files: int, max_member_bytes: int, max_total_bytes: int) -> list[dict]:
    """The archive's files extracted into ``dest``: ``[{"name", "stored", "size"} | {"name", "error"}]``.

    ParseError (the whole archive refused, nothing extracted) when it is not a zip, holds no files, holds
    too many, or looks like a zip bomb."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ParseError("the file is not a zip archive, or it is damaged") from None
    with archive:
        members = [member for member in archive.infolist() if _wanted(member)]
        if not members:
            raise ParseError("the zip archive holds no files")
        if len(members) > max_files:
            raise ParseError(f"the zip archive holds more than {max_files} files")
        if sum(member.file_size for member in members) > max_total_bytes:
            raise ParseError(f"the zip archive expands to more than {max_total_bytes // 2**20} MB (zip bomb?)")
        for member in members:
            if member.file_size > RATIO_CHECK_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
                raise ParseError(f"{Path(member.filename).name} is compressed more than {MAX_RATIO} times (zip bomb?)")
        results, written_total = [], 0
        slow = hooks_enabled() and archive.comment.startswith(b"x-test-slow")
        for member in members:
            if slow:
                time.sleep(SLOW_HOOK_SECONDS)
            name = PurePosixPath(member.filename.replace("\\", "/")).name
            if member.file_size > max_member_bytes:
                results.append({"name": name, "error": "too_large"})
                continue
            target = Path(dest) / f"{secrets.token_hex(16)}{PurePosixPath(name).suffix.lower()[:10]}"
            written = _extract(archive, member, target, limit=min(max_member_bytes, max_total_bytes - written_total))
            if written is None:
                results.append({"name": name, "error": "too_large"})
                continue
            written_total += written
            results.append({"name": name, "stored": target.name, "size": written})
    return results


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, *, limit: int) -> int | None:
    """Stream one member into ``target``; None (and no file) when it holds more than ``limit`` bytes."""
    written = 0
    try:
        with archive.open(member) as source, target.open("xb") as out:
            while piece := source.read(CHUNK):
                written += len(piece)
                if written > limit:
                    break
                out.write(piece)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        target.unlink(missing_ok=True)
        raise ParseError(f"{target.name}: the archive is damaged ({type(error).__name__})") from None
    if written > limit:
        target.unlink(missing_ok=True)
        return None
    return written
