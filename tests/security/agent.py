"""The far side of the SSRF suite, run as ``python -m tests.security.agent`` inside a network
namespace of its own (see :mod:`tests.security.netns`). Never run it anywhere else: it refuses to
start when the network has any interface but loopback.

On the namespace's loopback it puts:

* sentinels (:data:`SENTINELS`): HTTP servers on port 80 of the loopback, private, carrier-grade
  NAT and cloud-metadata addresses, counting every connection they accept;
* the hostile site (:data:`SITE`, port 80 of a public address, named ``site.test``): answers with
  the routes each scenario describes (redirects to the sentinels, compression bombs, drips, pages,
  sitemaps, model APIs).

Names are answered by a table (:data:`NAMES`) standing in for DNS: the module's resolver
(``chatsite.lib.http._resolve``, the one the client checks) and ``socket.getaddrinfo`` (what a
library would use if it resolved a name itself) both read it. ``rebind.test`` answers the client's
resolver with the public address the first time and a private one afterwards, and
``getaddrinfo`` always with the private one, as a rebinding DNS server would.

Protocol: one JSON command per line on stdin (``scenario``, ``params``, ``settings`` overrides,
module constants to ``patch``, the site's ``routes``), one JSON report per line on stdout. Every scenario runs inside a database transaction
that is rolled back, so the rows it makes never outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import itertools
import json
import socket
import subprocess
import sys
import time
import traceback
from functools import cache

SITE = "93.184.216.34"  # a public address (example.com's), put on this namespace's loopback only
SENTINELS = {
    "loopback": "127.0.0.1",
    "loopback-v6": "::1",
    "private": "10.0.0.1",
    "private-192": "192.168.1.1",
    "carrier-nat": "100.64.0.1",
    "metadata": "169.254.169.254",
}
NAMES = {
    "site.test": [SITE],
    "private.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "loopback.test": ["127.0.0.1"],
    "v6.test": ["::1"],
    "mixed.test": [SITE, "10.0.0.1"],
}
REBIND = "rebind.test"
REBIND_LATER = "10.0.0.1"

_owners = itertools.count(1)
SENTINEL_SERVERS: dict = {}  # name -> the server on that sentinel's address (the agent starts them)

_protocol = sys.stdout  # the reports; main() sends anything else printed to the log (stderr)


def isolate() -> None:
    """Refuse to go on outside an empty network namespace; then put the addresses on loopback."""
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        raise SystemExit(f"refusing to start: this network has interfaces {interfaces} (run it through unshare)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in [SITE, *SENTINELS.values()]:
        if ":" not in address and not address.startswith("127."):
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)


def fake_dns() -> dict:
    """Answer the names of :data:`NAMES` (and :data:`REBIND`) for the client's resolver and for
    ``getaddrinfo``; other names go to the system resolver (which has no network here)."""
    from chatsite.lib import http

    state = {"rebind_lookups": 0}
    real_getaddrinfo = socket.getaddrinfo
    real_resolve = http._resolve

    def resolve(host: str, port: int):
        if host == REBIND:
            state["rebind_lookups"] += 1
            return [ipaddress.ip_address(SITE if state["rebind_lookups"] == 1 else REBIND_LATER)]
        if host in NAMES:
            return [ipaddress.ip_address(address) for address in NAMES[host]]
        return real_resolve(host, port)  # addresses, /etc/hosts; there is no DNS server here

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name == REBIND:
            return real_getaddrinfo(REBIND_LATER, port, *args, **kwargs)
        if name in NAMES:
            return real_getaddrinfo(NAMES[name][-1], port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    http._resolve = resolve
    socket.getaddrinfo = getaddrinfo
    return state


# --- The hostile site's routes, from the JSON a test sends --------------------------------------------


@cache
def bomb(size: int, layers: int) -> bytes:
    from tests.security.hostile import gzip_of_zeros, stacked_gzip_bomb

    return stacked_gzip_bomb(size, layers) if layers > 1 else gzip_of_zeros(size)


def route_from(spec: dict):
    """A route of :mod:`tests.security.hostile` from ``{"kind": ..., ...}``:

    * ``respond``: ``status``, ``body`` (text), ``headers``;
    * ``redirect``: ``location``, ``status``;
    * ``bomb``: ``size`` decoded bytes of zeros in ``layers`` gzip layers, ``headers`` (with the
      ``Content-Encoding`` to declare);
    * ``drip``: ``interval``, ``count``, ``piece`` (text), ``in_headers``, ``headers``, ``status``.
    """
    from tests.security import hostile

    kind = spec["kind"]
    headers = spec.get("headers") or {}
    if kind == "respond":
        return hostile.respond(spec.get("status", 200), spec.get("body", "").encode(), headers)
    if kind == "redirect":
        return hostile.redirect(spec["location"], spec.get("status", 302))
    if kind == "bomb":
        return hostile.respond(spec.get("status", 200), bomb(spec["size"], spec.get("layers", 2)), headers)
    if kind == "drip":
        return hostile.drip(
            interval=spec["interval"],
            count=spec.get("count", 1000),
            piece=spec.get("piece", "x").encode(),
            in_headers=spec.get("in_headers", False),
            headers=headers,
            status=spec.get("status", 200),
        )
    raise ValueError(f"unknown route kind {kind!r}")


# --- Scenarios: each enters the product where a tenant's URL enters it ----------------------------


def _owner_team_assistant():
    from tests.factories import make_assistant, make_team, make_user

    # A name of the agent's own: the test process's factories count from 1 too, and a row it committed
    # (a module's fixture, say) holding "user1" would fail this insert.
    owner = make_user(f"ssrf-agent-{next(_owners)}")
    team = make_team(owner)
    return owner, team, make_assistant(team)


def _api(team):
    from django.test import Client

    from assistants.api.keys import api_key_create

    _, raw_key = api_key_create(team=team, name="ssrf suite", scopes=["read", "write", "chat"])
    client = Client()

    def call(method: str, path: str, body: dict | None = None):
        response = client.generic(
            method,
            f"/api/v1{path}",
            data=json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )
        if response.get("Content-Type", "").startswith("application/json"):
            return response.status_code, response.json()
        return response.status_code, response.content[:500].decode("utf-8", "replace")

    return call


def scenario_fetch(url: str, **options) -> dict:
    """``chatsite.lib.http.fetch`` itself (what every fetching path calls)."""
    from chatsite.lib import http

    result = http.fetch(url, **options)
    return {"status": result.status_code, "url": result.url, "bytes": len(result.content)}


def scenario_client(url: str, method: str = "GET") -> dict:
    """The API client (``sync_client``), as the embedding and model clients use it."""
    from chatsite.lib import http

    with http.sync_client() as client:
        response = client.request(method, url)
    return {"status": response.status_code, "bytes": len(response.content)}


def scenario_website_source(url: str, extra_hosts: list | None = None, max_pages: int = 10) -> dict:
    """A website source added through the REST API, then its crawl task run here as a worker would."""
    from ingestion.models import CrawlRun, Source
    from ingestion.tasks import source_crawl_task

    _, team, assistant = _owner_team_assistant()
    status, body = _api(team)("POST", f"/assistants/{assistant.pk}/sources", {"url": url, "max_pages": max_pages})
    if status != 201:
        return {"created": False, "status": status, "body": body}
    source = Source.objects.get(pk=body["id"])
    if extra_hosts:
        source.settings = {**source.settings, "extra_hosts": extra_hosts}
        source.save(update_fields=["settings"])
    run = CrawlRun.objects.filter(source=source).latest("pk")
    source_crawl_task(run.pk)
    run.refresh_from_db()
    return {"created": True, "run": run.status, "error": run.error, "report": run.report, "pages": run.pages_fetched}


def scenario_document_url(url: str) -> dict:
    """A document (or a video) added by its address through the REST API, then prepared here."""
    from ingestion.models import Document
    from ingestion.tasks import document_prepare_task

    _, team, assistant = _owner_team_assistant()
    status, body = _api(team)("POST", f"/assistants/{assistant.pk}/documents/url", {"url": url})
    if status != 202:
        return {"created": False, "status": status, "body": body}
    document = Document.objects.get(pk=body["id"])
    document_prepare_task(document.pk)
    document.refresh_from_db()
    return {"created": True, "document": document.status, "error": document.error}


def scenario_domain(host: str) -> dict:
    """A custom domain added and verified in the dashboard (the verification fetches the host)."""
    from django.test import Client

    from assistants.models import CustomDomain

    owner, _, assistant = _owner_team_assistant()
    browser = Client()
    browser.force_login(owner)
    browser.post(f"/assistants/{assistant.pk}/domains/", {"host": host})
    domain = CustomDomain.objects.filter(assistant=assistant).first()
    if domain is None:
        return {"created": False}
    browser.post(f"/domains/{domain.pk}/verify/")
    domain.refresh_from_db()
    return {"created": True, "verified": domain.verified_at is not None, "error": domain.last_check_error}


def scenario_images(avatar_url: str, logo_url: str) -> dict:
    """Avatar and logo URLs set through the REST API and the dashboard, then every page and answer
    that shows them rendered: the browser loads the images, the server never does."""
    from django.test import Client

    owner, team, assistant = _owner_team_assistant()
    api = _api(team)
    status, _ = api("PATCH", f"/assistants/{assistant.pk}", {"avatar_url": avatar_url, "logo_url": logo_url})
    browser = Client()
    browser.force_login(owner)
    pages = {
        "api": api("GET", f"/assistants/{assistant.pk}")[0],
        "dashboard": browser.get(f"/assistants/{assistant.pk}/").status_code,
        "branding": browser.get(f"/assistants/{assistant.pk}/settings/branding/").status_code,
        "page": Client().get(f"/a/{assistant.slug}/").status_code,
        "embed": Client().get(f"/embed/{assistant.public_key}/").status_code,
        "widget": Client().get("/widget.js").status_code,
    }
    assistant.refresh_from_db()
    return {"saved": status, "pages": pages, "avatar_url": assistant.avatar_url, "logo_url": assistant.logo_url}


def scenario_llm(base_url: str, kind: str = "openai") -> dict:
    """An assistant's own model URL, set through the REST API, then asked a question through its
    provider, as an answer does."""
    from assistants.answering.providers import ProviderError, provider_from_settings
    from assistants.models import Assistant

    _, team, assistant = _owner_team_assistant()
    status, body = _api(team)(
        "PATCH", f"/assistants/{assistant.pk}", {"llm_provider": kind, "llm_model": "m", "llm_base_url": base_url}
    )
    if status != 200:
        return {"saved": status, "body": body}
    provider = provider_from_settings(Assistant.objects.get(pk=assistant.pk))

    async def ask() -> str:
        text = []
        async for delta in provider.stream([{"role": "user", "content": "hello"}]):
            if isinstance(delta, str):
                text.append(delta)
        return "".join(text)

    try:
        return {"saved": status, "answer": asyncio.run(ask())}
    except ProviderError as exc:
        return {"saved": status, "failure": exc.kind, "detail": str(exc)}


def scenario_embedding(kind: str) -> dict:
    """The embedding API client (``EMBEDDING_API_BASE_URL`` / ``GEMINI_BASE_URL``, in settings)."""
    from ingestion.embedding import api

    embedder = api.GeminiEmbedder("m", 768) if kind == "gemini" else api.OpenAIEmbedder("m", 8)
    try:
        vectors = embedder.embed_queries(["hello"])
    except api.EmbeddingAPIError as exc:
        cause = exc.__cause__
        return {"failure": str(exc), "cause": type(cause).__name__ if cause else None}
    return {"shape": list(vectors.shape)}


def scenario_webhook(url: str, saved: bool = True) -> dict:
    """A webhook endpoint added in the dashboard (refused there for an address that may not be
    called); with ``saved``, an endpoint with that URL in the database anyway (its name resolved
    elsewhere when it was saved) and an event delivered to it, as the worker's task does."""
    from django.test import Client

    from assistants.models import WebhookEndpoint
    from assistants.tasks import webhook_deliver_task
    from assistants.webhooks import services, signing

    owner, team, _ = _owner_team_assistant()
    browser = Client()
    browser.force_login(owner)
    response = browser.post(f"/teams/{team.pk}/webhooks/", {"url": url, "events": ["lead.created"]})
    endpoint = WebhookEndpoint.objects.filter(team=team).first()
    result = {"form_status": response.status_code, "created": endpoint is not None}
    if endpoint is None:
        form = response.context["form"] if response.context else None
        result["form_errors"] = dict(form.errors) if form is not None else {}
        if not saved:
            return result
        endpoint = WebhookEndpoint.objects.create(
            team=team, url=url, events=["lead.created"], secret=signing.secret_new()
        )
    (delivery,) = services.emit(team=team, event_type="lead.created", data={"id": 1})
    result["outcome"] = webhook_deliver_task(delivery.pk)
    result["error"] = delivery.attempt_log.get().error
    return result


def scenario_control(url: str, host: str) -> dict:
    """The control: with private addresses allowed, each path does reach the sentinel behind
    ``url`` (or the name ``host``). ``reached``: the sentinels' new connections per path;
    ``outcomes``: what each path returned, or the exception it raised (so a path that reached
    nothing says why)."""
    from ingestion.crawling.crawler import CrawlLimits, crawl

    paths = {
        "fetch": lambda: scenario_fetch(url),
        "client": lambda: scenario_client(url),
        "crawl": lambda: [e.kind for e in crawl(url, CrawlLimits(max_pages=1, max_depth=0), user_agent="t")],
        "document": lambda: scenario_document_url(url + "file.pdf"),
        "video": lambda: scenario_document_url("https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        "domain": lambda: scenario_domain(host),
        "llm": lambda: scenario_llm(url + "v1"),
        "embedding": lambda: scenario_embedding("openai"),
        "webhook": lambda: scenario_webhook(url, saved=False),
    }
    reached, outcomes = {}, {}
    for name, call in paths.items():
        before = sum(server.hits for server in SENTINEL_SERVERS.values())
        outcomes[name] = _outcome(name, call)
        reached[name] = sum(server.hits for server in SENTINEL_SERVERS.values()) - before
    return {"reached": reached, "outcomes": outcomes}


SCENARIOS = {name.removeprefix("scenario_"): value for name, value in globals().items() if name.startswith("scenario_")}


def _outcome(name: str, call):
    """What ``call`` returned, or the exception it raised, as text; a raised exception's traceback
    goes to the agent's log too. Each call runs in a savepoint, so a database error in one path
    leaves the scenario's transaction usable by the next."""
    from django.db import transaction

    try:
        with transaction.atomic():
            return call()
    except Exception as exc:
        print(f"control path {name} raised:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        return f"{type(exc).__name__}: {exc}"


# --- The loop -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def patched(values: dict):
    """Module constants set for one scenario (``{"package.module.NAME": value}``), then restored."""
    saved = []
    try:
        for path, value in values.items():
            module_name, _, name = path.rpartition(".")
            module = importlib.import_module(module_name)
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


def _status_kib(name: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(name + ":"))


BASE_SETTINGS = {
    "OUTBOUND_ALLOW_PRIVATE": False,
    "OUTBOUND_ALLOWED_HOSTS": [],
    "OUTBOUND_TIMEOUT": 5.0,
    "OUTBOUND_DEADLINE": 10.0,
    "LLM_BASE_URL": "",
    "LLM_API_KEY": "",
    "LLM_TIMEOUT": 10.0,
    "EMBEDDING_API_BASE_URL": "http://private.test/v1",
    "GEMINI_BASE_URL": "http://private.test",
    "GEMINI_API_KEY": "k",
    "YOUTUBE_BASE_URL": "http://private.test",
    "CUSTOM_DOMAIN_HTTP_PORT": 80,
    "CRAWL_HOST_CONCURRENCY": 4,
    "CELERY_TASK_ALWAYS_EAGER": False,
}


def main() -> None:
    sys.stdout = sys.stderr
    isolate()
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, the in-memory mail outbox

    from chatsite.celery import app
    from tests.security.hostile import Server

    # Tasks that a scenario queues (the embedding of a downloaded file, say) refer to rows that are
    # rolled back: they go to an in-memory broker, never to the test run's queues.
    app.conf.broker_url = "memory://"
    dns = fake_dns()
    sentinels = SENTINEL_SERVERS
    sentinels.update({name: Server(address, 80) for name, address in SENTINELS.items()})
    site = Server(SITE, 80)
    _report({"ready": True, "site": SITE, "sentinels": SENTINELS})

    for line in sys.stdin:
        try:
            command = json.loads(line)
            site.routes = {path: route_from(spec) for path, spec in command.get("routes", {}).items()}
            for server in [site, *sentinels.values()]:
                server.reset()
            dns["rebind_lookups"] = 0
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            before = _status_kib("VmRSS")
            started = time.monotonic()
            report: dict = {}
            # A fresh connection per scenario: this process lives across test files, and one of them may
            # have the server drop the test database's connections (tests/e2e/test_worker_connections.py).
            connection.close()
            with (
                override_settings(**{**BASE_SETTINGS, **command.get("settings", {})}),
                patched(command.get("patch", {})),
                transaction.atomic(),
            ):
                try:
                    report["result"] = SCENARIOS[command["scenario"]](**command.get("params", {}))
                except Exception as exc:
                    report["error"] = f"{type(exc).__name__}: {exc}"
                    report["traceback"] = traceback.format_exc()[-3000:]
                transaction.set_rollback(True)
            report["seconds"] = round(time.monotonic() - started, 3)
            report["growth_mib"] = round((_status_kib("VmHWM") - before) / 1024, 1)
            report["hits"] = {name: server.hits for name, server in sentinels.items()}
            report["site"] = [
                {"method": r.method, "path": r.path, "host": r.headers.get("host", "")} for r in site.requests
            ]
            report["rebind_lookups"] = dns["rebind_lookups"]
            _report(report)
        except Exception:
            _report({"crash": traceback.format_exc()[-3000:]})
    for server in [site, *sentinels.values()]:
        server.close()


def _report(report: dict) -> None:
    _protocol.write(json.dumps(report, default=str) + "\n")
    _protocol.flush()


if __name__ == "__main__":
    main()
