"""Custom domains: a verified customer host serves one assistant's full page.

Runs first, before anything asks for the request's host. A host in ALLOWED_HOSTS passes untouched.
Any other host is accepted only when it is a *verified* custom domain (``assistants.domains.verification``): the
request's ``get_host()`` then returns it instead of raising DisallowedHost, ``/`` serves the
assistant's page, and only that assistant's own paths (``/a/<slug>/…``, ``/embed/<public key>/…``)
and static files answer — never the dashboard, the admin or another assistant. Unknown and
unverified hosts reach Django's ALLOWED_HOSTS check as usual and get a 400, so ``ALLOWED_HOSTS``
never needs to be ``*`` behind the TLS proxy.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseNotFound
from django.http.request import split_domain_port, validate_host


class CustomDomainMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw_host = request.META.get("HTTP_HOST", "")
        domain, _ = split_domain_port(raw_host)
        if not domain or validate_host(domain, settings.ALLOWED_HOSTS):
            return self.get_response(request)
        from assistants import selectors

        custom = selectors.verified_domain(host=domain)
        if custom is None:
            return self.get_response(request)  # refused by Django's host validation
        request.get_host = lambda: raw_host  # this host, and only this verified one, is accepted
        request.custom_domain = custom
        assistant = custom.assistant
        path = request.path_info
        if path == "/":
            request.path_info = f"/a/{assistant.slug}/"
        elif not path.startswith((f"/a/{assistant.slug}/", f"/embed/{assistant.public_key}/", settings.STATIC_URL)):
            return HttpResponseNotFound("Not found", content_type="text/plain")
        return self.get_response(request)
