"""URL helpers shared by the layers above."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# The file a web server sends for a folder's address: ``/docs/`` and ``/docs/index.html`` are one page.
_DIRECTORY_INDEX = re.compile(r"/(?:index|default)\.html?$", re.IGNORECASE)


def page_key(url: str) -> tuple[str, str]:
    """A page's identity (the page boost, the golden set): host without ``www.``, path without a
    trailing slash or a folder's ``index.html``; scheme, query and fragment ignored (the crawler
    drops tracking parameters, the widget does not)."""
    parts = urlsplit(url.strip())
    path = _DIRECTORY_INDEX.sub("/", parts.path)
    return (parts.hostname or "").removeprefix("www."), path.rstrip("/")
