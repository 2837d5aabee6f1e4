"""Admission of answers: how many may stream at once, per visitor (or API key) and per assistant.

Places are held in Redis (``chatsite.lib.ratelimit.acquire``), shared by every web process; a place held
by a process that died lapses by itself after the longest an answer can take. Beyond the caps
(STREAMS_PER_VISITOR, STREAMS_PER_ASSISTANT) a request is refused with 429 and Retry-After (the chat page
asks again after it), so a burst queues at the door instead of piling up behind the model.
"""

from __future__ import annotations

import secrets

from django.conf import settings

from assistants.models import Assistant
from chatsite.lib import ratelimit

STREAM_RETRY_AFTER = 2  # seconds a busy visitor's chat waits before asking again


def stream_places(assistant: Assistant, token: str) -> list[str] | None:
    """Take a place for one more answer streaming at once for this visitor (or API key) and this
    assistant; the places taken (give them back with :func:`release_stream_places`), or None when the
    visitor or the assistant already has STREAMS_PER_VISITOR / STREAMS_PER_ASSISTANT answers under way
    (the caller answers 429 with Retry-After)."""
    holder = secrets.token_hex(8)
    ttl = int(settings.LLM_TIMEOUT) + 60  # a place a dead process held frees itself
    taken = []
    for key, limit in (
        (f"streams:visitor:{assistant.pk}:{token}", settings.STREAMS_PER_VISITOR),
        (f"streams:assistant:{assistant.pk}", settings.STREAMS_PER_ASSISTANT),
    ):
        if limit <= 0:
            continue
        if not ratelimit.acquire(key, holder=holder, limit=limit, ttl=ttl):
            release_stream_places(taken)
            return None
        taken.append(f"{key}|{holder}")
    return taken


def release_stream_places(taken: list[str]) -> None:
    for entry in taken:
        key, holder = entry.rsplit("|", 1)
        ratelimit.release(key, holder=holder)
