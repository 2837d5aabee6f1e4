"""URL helpers shared by the layers above."""

from __future__ import annotations

from urllib.parse import urlsplit


def page_key(url: str) -> tuple[str, str]:
    """A page's identity for the page boost: host without ``www.``, path without a trailing slash;
    scheme, query and fragment ignored (the crawler drops tracking parameters, the widget does not)."""
    parts = urlsplit(url.strip())
    return (parts.hostname or "").removeprefix("www."), parts.path.rstrip("/")
