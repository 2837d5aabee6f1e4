"""Standard Webhooks signatures (https://www.standardwebhooks.com/), with the ``standardwebhooks`` package.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the ``webhook-signature`` header
holds one ``v1,<base64 HMAC-SHA256>`` per secret, separated by spaces, so that while a rotated secret
is in its grace period a receiver that still has the old one verifies the message too.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    """A fresh endpoint secret: ``whsec_`` and 24 random bytes in base64 (the form the package reads)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def message_id_new() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def body_bytes(payload: dict) -> bytes:
    """The exact bytes sent, and signed: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def signed_headers(*, message_id: str, at: datetime, body: bytes, secrets_in_use: list[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``at``, signed with each secret."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets_in_use if secret)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
