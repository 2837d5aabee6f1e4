"""Request bodies are refused before Django reads them (security finding 4), through the real ASGI
application under a real uvicorn, with raw HTTP/1.1 on a socket."""

import socket
import threading
import time

import pytest

from tests.conftest import wait_for
from tests.servers import free_port

BIG = 2_000_000_000  # a declared 2 GB body, never sent


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from chatsite.asgi import application

    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: running.started, timeout=30, interval=0.05, message="uvicorn")
    yield port
    running.should_exit = True
    thread.join(timeout=10)


def exchange(port: int, head: str, body_chunks=(), pause: float = 0.0) -> tuple[int, float]:
    """Send a request head (and body chunks, each after ``pause``), return (status, seconds to the answer)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode())
        answer = b""
        connection.setblocking(False)
        for chunk in body_chunks:
            try:
                answer += connection.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break  # answered before the body was all sent
            try:
                connection.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
        connection.setblocking(True)
        while b"\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def head(method: str, path: str, *extra: str) -> str:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *extra, "", ""])


def test_a_declared_huge_body_is_refused_at_once(server):
    status, seconds = exchange(
        server, head("POST", "/a/any/chat", f"Content-Length: {BIG}", "Content-Type: application/json")
    )
    assert status == 413 and seconds < 2


def test_a_signed_in_upload_route_allows_more_but_not_without_bound(server):
    upload = ("POST", "/assistants/1/documents/", "Cookie: sessionid=anything")
    status, seconds = exchange(server, head(*upload, f"Content-Length: {BIG}"))
    assert status == 413 and seconds < 2
    status, _ = exchange(server, head(*upload, "Content-Length: 200000"), [b"x" * 200_000])
    assert status != 413  # within the upload limit: Django answers (here: 403, no CSRF token)


def test_anonymous_bodies_larger_than_a_question_are_refused_on_any_route(server):
    status, _ = exchange(server, head("POST", "/assistants/1/documents/", "Content-Length: 200000"))
    assert status == 413
    status, _ = exchange(server, head("POST", "/help/", "Content-Length: 100"), [b"x" * 100])
    assert status == 403  # small: it reached Django (which wants a CSRF token)


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    chunk = b"%x\r\n%s\r\n" % (8192, b"y" * 8192)
    status, _ = exchange(
        server,
        head("POST", "/a/any/chat", "Transfer-Encoding: chunked", "Content-Type: application/json"),
        [chunk] * 400,
        pause=0.001,
    )
    assert status == 413
