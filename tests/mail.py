"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests of the emails the
product sends: invitations and password resets go through Django's SMTP backend to it."""

from __future__ import annotations

import email
import re
import threading
import time
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.servers import free_port


class Mailbox:
    """The messages the server received, parsed; ``wait_for`` waits for one to an address."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address.lower() in m["X-Envelope-To"].lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15) -> EmailMessage:
        """The ``count``-th message to ``address`` (the latest once there are that many)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.to(address)
            if len(received) >= count:
                return received[count - 1]
            time.sleep(0.1)
        raise AssertionError(f"no email number {count} to {address} within {timeout:.0f} s")


def body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def first_link(message: EmailMessage) -> str:
    match = re.search(r"https?://\S+", body(message))
    assert match, body(message)
    return match.group(0)


class SmtpServer:
    """aiosmtpd's controller on 127.0.0.1 and a free port, in a thread of its own."""

    def __init__(self, mailbox: Mailbox | None = None):
        self.port = free_port()
        self.mailbox = mailbox or Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()
