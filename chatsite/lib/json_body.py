"""JSON request bodies, as every endpoint that takes JSON reads them (the API, the chat, the widget).

NUL characters are removed from every string, keys included: PostgreSQL's text and jsonb cannot
store them (a question, a name or a page address holding one made the request fail with a server
error), and they carry no meaning in anything a person types.
"""

from __future__ import annotations

import json


def loads(body: bytes | str):
    """The parsed body, without NUL characters; ValueError when it is not JSON."""
    return _without_nul(json.loads(body))


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def read_object(request) -> dict | None:
    """A request's JSON object body, or None when it is not one. JSON only: a cross-site form cannot
    send ``application/json`` without a CORS preflight, so anonymous JSON endpoints need no CSRF token."""
    if request.content_type != "application/json":
        return None
    try:
        payload = loads(request.body or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
