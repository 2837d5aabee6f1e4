"""The warm parent of parser children: ``python -m ingestion.parsers.zygote CONTROL_FD``.

Starting a fresh Python and importing the parsing libraries cost ~0.2 s of CPU per file (3.1 s of the
7.5 s that parsing the 15 shared documents took one child each), so one process per caller imports
them once and forks a child per file. The child is as disposable as a fresh process: it limits its
own memory, CPU time and output before it reads the file (worker.py), and whatever it does to
itself — run out of memory, spin, crash — ends with it.

Protocol. The caller (sandbox.py) holds the other end of the stream socket CONTROL_FD. For each file
it sends one byte carrying two descriptors (SCM_RIGHTS): a socket for that file's conversation and a
file for the child's stderr. The zygote forks; the child writes ``{"pid": N}``, reads one JSON
request line, writes one JSON reply line and exits. Once the child has been reaped the zygote
writes ``{"exit": STATUS}`` (negative: the signal that ended it, as ``subprocess`` reports) and
closes the socket, so the caller reads to end of file. When the caller's end of the control socket
closes (it exited or died), the zygote kills the children still parsing and exits.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys

from . import worker  # (imports every parser: its children inherit them loaded)


def main(control_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, whose exit ends this process
    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up fd hears of every child
    signal.set_wakeup_fd(wake_write)
    children: dict[int, socket.socket] = {}  # pid -> its conversation, until it is reaped
    events = selectors.DefaultSelector()
    events.register(control, selectors.EVENT_READ)
    events.register(wake_read, selectors.EVENT_READ)
    own = (control.fileno(), wake_read, wake_write, events.fileno())
    while True:
        for key, _ in events.select():
            if key.fileobj is control:
                if not _accept(control, children, keep=own):
                    for pid in children:  # nobody waits for their replies any more
                        os.kill(pid, signal.SIGKILL)
                    return
            else:
                _drain(wake_read)
        _reap(children)


def _accept(control: socket.socket, children: dict[int, socket.socket], keep: tuple[int, ...]) -> bool:
    """Fork a child for the next file; False once the caller has gone."""
    try:
        data, fds, _, _ = socket.recv_fds(control, 1, 2)
    except InterruptedError:
        return True
    if not data:
        return False
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return True
    conversation, stderr_fd = socket.socket(fileno=fds[0]), fds[1]
    try:
        pid = os.fork()
    except OSError as error:
        os.close(stderr_fd)
        _send(conversation, {"error": f"the parser could not be started ({error.strerror})"})
        conversation.close()
        return True
    if pid == 0:
        _child(conversation, stderr_fd, [*keep, *(other.fileno() for other in children.values())])
    os.close(stderr_fd)
    children[pid] = conversation
    return True


def _child(conversation: socket.socket, stderr_fd: int, inherited: list[int]) -> None:
    """In the forked child: forget the zygote's descriptors and signals, parse one file, exit."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:  # others' conversations too: their callers must see their end of file
            os.close(fd)
        os.dup2(stderr_fd, 2)
        os.dup2(stderr_fd, 1)  # anything a library prints goes to stderr, never into the reply
        os.close(stderr_fd)
        _send(conversation, {"pid": os.getpid()})
        with conversation.makefile("rb") as lines:
            request = json.loads(lines.readline())
        _send(conversation, worker.handle(request))
        status = 0
    finally:
        os._exit(status)


def _send(conversation: socket.socket, message: dict) -> None:
    try:
        conversation.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the caller has given up on this file


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conversation = children.pop(pid, None)
        if conversation is not None:
            _send(conversation, {"exit": os.waitstatus_to_exitcode(status)})
            conversation.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


if __name__ == "__main__":
    main(int(sys.argv[1]))
