"""Run a parser in a child process with memory, CPU and wall-clock limits.

Each file is parsed by a child of its own, forked from a warm zygote process that has the parsing
libraries imported (zygote.py; one per process that parses, started on first use and again if it
dies): a hostile or broken file can exhaust the child's memory, hang it or crash it, and the caller
only ever sees a ParsedDocument or a ParseError with a clear reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .detect import hooks_enabled
from .types import ParsedDocument, ParseError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# The directory that holds the ``ingestion`` package, so the zygote can import the parsers.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


class Zygote:
    """This process's zygote: started on first use, restarted when it has died or this process forked."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owner = 0  # the pid that started the running zygote
        self.process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        os.register_at_fork(after_in_child=self._forget_lock)

    def _forget_lock(self) -> None:
        """In a forked child the lock may be held by a thread that did not come along."""
        self._lock = threading.Lock()

    def conversation(self, stderr_fd: int) -> socket.socket:
        """A socket connected to a newly forked child whose stderr is ``stderr_fd``."""
        mine, theirs = socket.socketpair()
        try:
            with self._lock:
                for attempt in (1, 2):
                    control = self._running()
                    try:
                        socket.send_fds(control, [b"f"], [theirs.fileno(), stderr_fd])
                        break
                    except OSError:  # it died: start another, once
                        self._stop()
                        if attempt == 2:
                            raise
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine

    def _running(self) -> socket.socket:
        if self._control is not None and (self._owner != os.getpid() or self.process.poll() is not None):
            self._stop()
        if self._control is None:
            control, theirs = socket.socketpair()
            env = dict(
                os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_IMPORT_ROOT, os.environ.get("PYTHONPATH")]))
            )
            with theirs:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "ingestion.parsers.zygote", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    cwd=_IMPORT_ROOT,
                    env=env,
                )
            self._control, self._owner = control, os.getpid()
        return self._control

    def _stop(self) -> None:
        """Let go of the zygote (it exits when its control socket closes); a forked copy only closes its end."""
        self._control.close()
        if self._owner == os.getpid():
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._control = self.process = None


_zygote = Zygote()


def parse_file(
    path: str | Path,
    *,
    filename: str,
    content_type: str = "",
    time_limit: float = 60,
    memory_limit_mb: int = 1024,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedDocument:
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
        "test_hooks": hooks_enabled(),
    }
    reply = _in_child(request, time_limit, "parsing", filename)
    return ParsedDocument.from_dict(reply["document"])


def unpack_archive(
    path: str | Path,
    dest: str | Path,
    *,
    max_files: int,
    max_member_bytes: int,
    max_total_bytes: int,
    time_limit: float = 120,
    memory_limit_mb: int = 512,
) -> list[dict]:
    """Unpack a zip of documents into ``dest`` in a sandboxed child (see archives.py): one entry per
    file, ``{"name", "stored", "size"}`` or ``{"name", "error": "too_large"}``. ParseError refuses the
    whole archive (not a zip, empty, too many files, a zip bomb, too slow, too hungry)."""
    request = {
        "op": "unpack",
        "path": str(Path(path).resolve()),
        "dest": str(Path(dest).resolve()),
        "max_files": max_files,
        "max_member_bytes": max_member_bytes,
        "max_total_bytes": max_total_bytes,
        "memory_limit_mb": memory_limit_mb,
        "cpu_seconds": math.ceil(time_limit) + 1,
        "test_hooks": hooks_enabled(),
    }
    return _in_child(request, time_limit, "unpacking", Path(path).name)["files"]


def _in_child(request: dict, time_limit: float, doing: str, filename: str) -> dict:
    """Send ``request`` to a child forked for it and return its reply; ParseError with the reason."""
    deadline = time.monotonic() + time_limit
    with tempfile.TemporaryFile() as stderr, _zygote.conversation(stderr.fileno()) as conversation:
        conversation.sendall(json.dumps(request).encode() + b"\n")
        messages = _read_messages(conversation, deadline)
        if messages is None:
            raise ParseError(f"{doing} took longer than {time_limit:g} s") from None
        reply = next((message for message in messages if set(message) & {"error", "document", "files"}), None)
        if reply is None:
            returncode = next((message["exit"] for message in messages if "exit" in message), 1)
            stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 2000))
            logger.warning(
                "child %s %r exited with %s: %s", doing, filename, returncode, stderr.read().decode(errors="replace")
            )
            raise ParseError(_failure_reason(returncode, request))
    if "error" in reply:
        raise ParseError(reply["error"])
    return reply


def _read_messages(conversation: socket.socket, deadline: float) -> list[dict] | None:
    """The child's and the zygote's messages, read to end of file; None (the child killed) past the deadline."""
    received = bytearray()
    while True:
        conversation.settimeout(max(0.0, deadline - time.monotonic()) or 1e-6)
        try:
            data = conversation.recv(1 << 20)
        except TimeoutError:
            if pid := _first_pid(received):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return None
        if not data:
            break
        received += data
    messages = []
    for line in bytes(received).splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def _first_pid(received: bytearray) -> int | None:
    line, newline, _ = bytes(received).partition(b"\n")
    try:
        return int(json.loads(line)["pid"]) if newline else None
    except (ValueError, KeyError, TypeError):
        return None


def parse_files(
    files: Iterable[tuple[str | Path, str]], *, max_workers: int = 2, **options
) -> list[ParsedDocument | ParseError]:
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


def _failure_reason(returncode: int, request: dict) -> str:
    """Why the child died without a reply, in words."""
    if returncode == -signal.SIGXCPU:
        return f"parsing used more than {request['cpu_seconds']} s of processor time"
    if returncode == -signal.SIGKILL:
        return f"the parser was stopped, probably for needing more than {request['memory_limit_mb']} MB of memory"
    if returncode < 0:
        return f"the parser crashed on this file ({signal.Signals(-returncode).name})"
    return "the parser crashed on this file"
