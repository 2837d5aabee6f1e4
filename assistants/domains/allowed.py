"""An assistant's allowed domains: the sites whose pages may show its widget.

One entry is a host name (``www.example.com``), optionally with a port (``localhost:8080``) and
optionally a leading ``*.`` wildcard (``*.example.com``: every subdomain, not example.com itself),
lower-case. This module is the one place that says what an entry may be (:func:`clean_allowed_domains`,
for the dashboard's forms and the REST API alike) and whether a page's origin matches one
(:func:`origin_allowed`, for the loader's check), matching the way browsers read the CSP
``frame-ancestors`` sources that really enforce it (``assistants.web.widget.embed_csp``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_ALLOWED_DOMAINS = 50
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AllowedDomainError(ValueError):
    """An entry that is not an allowed domain; ``str()`` is a message for the person who typed it."""


def _example(value: str) -> str:
    """What was probably meant: the host (and port) of something typed as an address."""
    text = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    return f"{host}{port}" if host and all(_LABEL.fullmatch(label) for label in host.split(".")) else ""


def normalize_allowed_domain(value: str) -> str:
    """One entry, lower-cased and checked; AllowedDomainError with a message naming it otherwise."""
    entry = (value or "").strip().lower().rstrip(".")
    shown = (value or "").strip()[:80]
    if "://" in entry or "/" in entry or "?" in entry or "#" in entry:
        guess = _example(entry)
        hint = f" Write just the host name: {guess}" if guess else " Write just the host name, e.g. www.example.com"
        raise AllowedDomainError(f"“{shown}” is an address, not a domain.{hint}")
    wildcard = entry.startswith("*.")
    host, _, port = entry[2:].partition(":") if wildcard else entry.partition(":")
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise AllowedDomainError(f"“{shown}”: the port must be a number from 1 to 65535.")
        port = str(int(port))
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        host = "!"  # refused below
    labels = host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AllowedDomainError(
            f"“{shown}” is not a domain. Use a host name such as www.example.com, *.example.com or localhost:8080."
        )
    if wildcard and len(labels) < 2:
        raise AllowedDomainError(f"“{shown}” is too broad: a wildcard needs a domain, such as *.example.com.")
    return f"{'*.' if wildcard else ''}{host}{':' + port if port else ''}"


def clean_allowed_domains(entries) -> list[str]:
    """The entries (a list, or text with one per line), normalized, without blanks and duplicates;
    AllowedDomainError naming the first wrong one."""
    if isinstance(entries, str):
        entries = entries.splitlines()
    cleaned: list[str] = []
    for entry in entries or []:
        if not isinstance(entry, str):
            raise AllowedDomainError("Each allowed domain must be a host name, such as www.example.com.")
        if not entry.strip():
            continue
        domain = normalize_allowed_domain(entry)
        if domain not in cleaned:
            cleaned.append(domain)
    if len(cleaned) > MAX_ALLOWED_DOMAINS:
        raise AllowedDomainError(f"At most {MAX_ALLOWED_DOMAINS} allowed domains.")
    return cleaned


def stored_domains(allowed_domains) -> list[str]:
    """The valid entries of a stored list (anything else, from before validation, is left out)."""
    valid = []
    for entry in allowed_domains or []:
        try:
            valid.append(normalize_allowed_domain(str(entry)))
        except AllowedDomainError:
            continue
    return valid


def origin_allowed(origin: str, allowed_domains) -> bool:
    """Whether a page of ``origin`` (``https://www.example.com``, ``http://localhost:8080``) may show
    the widget, by the rules of the CSP sources ``https://<entry> http://<entry>``: a given port must
    match; without one, only the scheme's default port; ``*.`` matches subdomains only."""
    try:
        parts = urlsplit(origin or "")
        scheme, host, port = parts.scheme, (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return False
    if scheme not in _DEFAULT_PORTS or not host or parts.path or parts.query or parts.username:
        return False
    port = port or _DEFAULT_PORTS[scheme]
    for entry in stored_domains(allowed_domains):
        pattern, _, entry_port = entry.partition(":")
        if entry_port:
            if int(entry_port) != port:
                continue
        elif port != _DEFAULT_PORTS[scheme]:
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def suggestion_for(origin: str) -> str:
    """The entry that would allow ``origin``: its host, with its port unless the scheme's default."""
    try:
        parts = urlsplit(origin or "")
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    return f"{host}:{port}" if port and port != _DEFAULT_PORTS.get(parts.scheme) else host
