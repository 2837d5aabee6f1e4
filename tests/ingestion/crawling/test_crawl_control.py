"""Pause, resume and cancel a crawl while it runs: the site's own server pauses or cancels the
run (through the real services, from its thread) while the crawl task is fetching a page."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections

from ingestion import services
from ingestion.models import CrawlRun, Document, Source
from ingestion.tasks import source_crawl_task
from tests.assistants.api.conftest import Api, assert_error
from tests.factories import make_assistant
from tests.servers import start_serving

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 8
TEXT = "Chapter {n} of the handbook explains how the warehouse packs, labels and ships every order. " * 4


class Site:
    """Pages /p0/ … /p7/, each linking to the next; ``on_request(path)`` runs before each answer."""

    def __init__(self):
        self.on_request = lambda path: None
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    site.on_request(self.path)
                finally:
                    connections.close_all()  # this thread's database connection, if it opened one
                if not self.path.startswith("/p"):
                    self.send_error(404)
                    return
                n = int(self.path.strip("/")[1:])
                link = f'<a href="/p{n + 1}/">next</a>' if n + 1 < PAGES else ""
                body = (
                    f"<html><head><title>Chapter {n}</title></head><body><main><h1>Chapter {n}</h1>"
                    f"<p>{TEXT.format(n=n)}</p>{link}</main></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        start_serving(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/p0/"


@pytest.fixture
def site(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    served = Site()
    yield served
    served.server.shutdown()


def start(site) -> tuple[Source, CrawlRun]:
    source = services.source_create_website(
        assistant=make_assistant(), url=site.url, max_pages=50, max_depth=20, whole_site=True
    )
    return source, services.source_crawl_start(source=source)


def on_page(site, number: int, action):
    def hook(path):
        if path == f"/p{number}/":
            action()

    site.on_request = hook


def test_a_paused_crawl_stops_and_resumes_without_refetching_content(site):
    source, run = start(site)
    on_page(site, 3, lambda: services.run_pause(source=source))
    source_crawl_task(run.pk)
    run.refresh_from_db()
    source.refresh_from_db()
    assert (run.status, source.status) == ("paused", "paused")
    assert run.pages_fetched == 4  # p0..p3: it stopped after the page it was fetching
    assert Document.objects.filter(source=source).count() == 4

    # a scheduled recrawl does not wake it; only resume does
    assert source not in services.sources_due_for_recrawl()
    with pytest.raises(services.IngestionError, match="paused"):
        services.run_pause(source=source)

    site.on_request = lambda path: None
    resumed = services.run_resume(source=source)
    assert resumed.pk == run.pk and resumed.status == "queued" and resumed.attempts == 0
    source_crawl_task(run.pk)
    run.refresh_from_db()
    assert run.status == "indexing" and run.pages_fetched == PAGES
    assert run.pages_unchanged == 4  # the pages stored before the pause were not stored again
    assert sorted(Document.objects.filter(source=source).values_list("title", flat=True)) == [
        f"Chapter {n}" for n in range(PAGES)
    ]


def test_a_cancelled_crawl_ends_and_keeps_what_it_stored(site):
    source, run = start(site)
    on_page(site, 2, lambda: services.run_cancel(source=source))
    source_crawl_task(run.pk)
    run.refresh_from_db()
    source.refresh_from_db()
    assert (run.status, run.error, source.status) == ("cancelled", "cancelled", "ready")
    assert run.finished_at is not None and Document.objects.filter(source=source).count() == 3
    with pytest.raises(services.IngestionError, match="no crawl"):
        services.run_cancel(source=source)
    source_crawl_task(run.pk)  # a redelivered message of the cancelled run does nothing
    assert CrawlRun.objects.get(pk=run.pk).status == "cancelled"
    new_run = services.source_crawl_start(source=source)
    assert new_run.pk != run.pk and new_run.status == "queued"


def test_crawl_now_on_a_paused_source_resumes_its_run(site):
    source, run = start(site)
    services.run_pause(source=source)
    assert services.source_crawl_start(source=source).pk == run.pk
    assert CrawlRun.objects.get(pk=run.pk).status == "queued"


def test_the_api_and_the_dashboard_control_a_run(site, client):
    from assistants.api.keys import api_key_create

    source, run = start(site)
    _, raw = api_key_create(team=source.assistant.team, name="ops", scopes=["read", "write"])
    api = Api(raw)
    paused = api.post(f"/sources/{source.pk}/pause")
    assert paused.status_code == 200 and paused.json()["progress"]["run"]["status"] == "paused"
    assert_error(api.post(f"/sources/{source.pk}/pause"), 409, "conflict")
    assert api.post(f"/sources/{source.pk}/resume").json()["progress"]["run"]["status"] == "queued"
    owner = source.assistant.team.memberships.get().user
    client.force_login(owner)
    page = client.get(f"/sources/{source.pk}/").content.decode()
    assert f'action="/sources/{source.pk}/pause"' in page and f'action="/sources/{source.pk}/cancel"' in page
    response = client.post(f"/sources/{source.pk}/cancel")
    assert response.status_code == 302 and CrawlRun.objects.get(pk=run.pk).status == "cancelled"
    assert client.post(f"/sources/{source.pk}/explode").status_code == 404
