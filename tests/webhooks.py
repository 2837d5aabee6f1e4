"""A real webhook receiver on loopback for the tests: a threaded ``http.server`` that verifies every
request's Standard Webhooks signature with the ``standardwebhooks`` package, keeps what it received,
and fails on purpose when told to (the first N requests answer 500, or a redirect, a slow answer, a
large body)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from tests.servers import start_serving

STALL_SECONDS = 8


class Receiver:
    def __init__(self):
        self.secrets: list[str] = []  # the secret(s) the receiver verifies with; any one passing verifies
        self.fail_first = 0  # answer 500 to this many requests first
        self.mode = "ok"  # "ok", "redirect", "slow", "large"
        self.stall_first = 0  # hold this many requests first (STALL_SECONDS each) before answering
        self.stalled = threading.Semaphore(0)  # released as each held request arrives
        self.received: list[dict] = []  # every request: {"path", "headers", "body", "verified", "status"}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                verified, payload = False, None
                for secret in receiver.secrets:
                    try:
                        payload = Webhook(secret).verify(body, headers)
                        verified = True
                        break
                    except WebhookVerificationError:
                        continue
                with receiver.lock:
                    failing = len(receiver.received) < receiver.fail_first
                    status = 500 if failing else {"redirect": 302}.get(receiver.mode, 200)
                    if not verified:
                        status = 400
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": headers,
                            "body": body,
                            "payload": payload,
                            "verified": verified,
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                    stall = len(receiver.received) <= receiver.stall_first
                if stall:  # the sender is killed meanwhile (tests/e2e/test_worker_killed.py)
                    receiver.stalled.release()
                    time.sleep(STALL_SECONDS)
                if receiver.mode == "slow" and not failing:
                    time.sleep(3)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                self.send_header("Content-Type", "application/json")
                out = b"x" * (1024 * 1024) if receiver.mode == "large" else json.dumps({"ok": status == 200}).encode()
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/chatsite"
        self.host = f"127.0.0.1:{self.port}"
        start_serving(self.server)

    def verified(self) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["verified"]]

    def wait_for(self, predicate, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                received = list(self.received)
            if predicate(received):
                return received
            time.sleep(0.1)
        raise AssertionError(f"the receiver got {len(self.received)} requests: {self.received}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()
