"""Custom domains: a customer's own host (``help.example.com``) serving an assistant's full page.

A team adds a host; the dashboard shows a verification token and two ways to prove control of the
host:

* an HTTP file ``http://<host>/.well-known/chatsite-verification.txt`` whose content is the token,
  fetched only through the SSRF-safe outbound client (``chatsite/lib/http.py``): a host that
  resolves to a private address is refused like any other outbound request;
* a DNS TXT record ``_chatsite-challenge.<host>`` whose value is the token, checked when dnspython
  is installed (it is not a dependency today: the check then says so plainly).

Once verified, ``assistants.domains.middleware.CustomDomainMiddleware`` accepts the host (and only then:
unknown and unverified hosts meet Django's ALLOWED_HOSTS check as usual) and serves the assistant's
page at ``/``. Caddy's on-demand TLS asks ``/domains/check?domain=<host>`` before getting a
certificate; it answers 200 only for verified hosts.
"""

from __future__ import annotations

import re

from django.conf import settings

from chatsite.lib import http

CHALLENGE_PATH = "/.well-known/chatsite-verification.txt"
DNS_PREFIX = "_chatsite-challenge."
MAX_TOKEN_FILE_BYTES = 4096
#: Wall-clock seconds the HTTP check may take in all (connect, redirects, body): it runs while a
#: person waits on the dashboard, and a host that drips its answer must not hold a web process.
HTTP_CHECK_DEADLINE = 10.0
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_host(value: str) -> str:
    """A host name, lower-cased, without a trailing dot; ValueError when it is not a plain DNS name
    (IP addresses, ports, paths, schemes and single labels are refused)."""
    host = (value or "").strip().lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise ValueError("Enter a valid host name, such as help.example.com.") from exc
    labels = host.split(".")
    # One label is allowed (an intranet's http://help/); a numeric last label would be an IP address.
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError("Enter a valid host name, such as help.example.com.")
    return host


def dns_available() -> bool:
    try:
        import dns.resolver  # noqa: F401
    except ImportError:
        return False
    return True


def _check_http(host: str, token: str) -> str:
    # The port is 80 except where the operator says otherwise (a test server, a port-mapping proxy).
    port = settings.CUSTOM_DOMAIN_HTTP_PORT
    url = f"http://{host}{'' if port == 80 else f':{port}'}{CHALLENGE_PATH}"
    try:
        result = http.fetch_or_fail(
            url,
            subject=url,
            max_bytes=MAX_TOKEN_FILE_BYTES,
            timeout=HTTP_CHECK_DEADLINE,
            deadline=HTTP_CHECK_DEADLINE,
            max_redirects=2,
        )
    except http.FetchFailed as exc:
        return f"{exc.reason}."
    if result.status_code != 200:
        return f"{url} answered HTTP {result.status_code}."
    if result.text.strip() != token:
        return f"{url} does not contain the verification token."
    return ""


def _check_dns(host: str, token: str) -> str:
    import dns.exception
    import dns.resolver

    name = DNS_PREFIX + host
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=10)
    except dns.exception.DNSException as exc:
        return f"No TXT record {name} ({type(exc).__name__})."
    values = {b"".join(record.strings).decode("utf-8", "replace").strip() for record in answer}
    return "" if token in values else f"The TXT record {name} does not contain the verification token."


def check_control(*, host: str, token: str) -> str:
    """ "" when the host proves control (DNS TXT record or HTTP file), else why not, in plain words."""
    errors = []
    if dns_available():
        dns_error = _check_dns(host, token)
        if not dns_error:
            return ""
        errors.append(dns_error)
    else:
        errors.append("DNS verification is unavailable on this server (dnspython is not installed); use the HTTP file.")
    http_error = _check_http(host, token)
    if not http_error:
        return ""
    return " ".join([http_error, *errors])
