"""``--wait``: the commands follow the real worker's run to its end and print its report."""

import io

import pytest
from django.core.management import call_command

from ingestion.models import Document
from tests.factories import make_assistant
from tests.servers import serve_directory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGE = "<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p>{links}</main></body></html>"


@pytest.fixture
def tiny_site(tmp_path):
    """Two pages (long enough to be indexed) and a broken link, served on loopback."""
    root = tmp_path / "site"
    (root / "shipping").mkdir(parents=True)
    (root / "index.html").write_text(
        PAGE.format(
            title="Home",
            text="Welcome to the shop, where every order is packed by hand. " * 5,
            links='<a href="/shipping/">Shipping</a> <a href="/gone/">Old</a>',
        )
    )
    (root / "shipping" / "index.html").write_text(
        PAGE.format(
            title="Shipping", text="Orders ship within three business days from the Lisbon warehouse. " * 5, links=""
        )
    )
    server, url = serve_directory(root)
    yield url
    server.shutdown()


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the site is served on 127.0.0.1 (the worker is told too)


def test_add_source_wait_prints_progress_then_the_report(celery_worker_process, tiny_site):
    assistant = make_assistant()
    out = io.StringIO()
    call_command(
        "add_source", assistant.slug, f"{tiny_site}/", "--max-depth", "1", "--wait", "--interval", "0.5", stdout=out
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Added source")
    assert any(line.startswith(("queued:", "running:")) for line in lines[1:]), lines
    assert "done: pages found 3, fetched 2, failed 1; documents ready 2, pending 0;" in out.getvalue(), lines
    report = next(i for i, line in enumerate(lines) if line.startswith("Run "))
    assert lines[report].endswith("chunks embedded.") and " done: 2 fetched" in lines[report]
    assert lines[report + 1].startswith(f"  failed: {tiny_site}/gone/")


def test_upload_documents_wait_follows_the_indexing(celery_worker_process, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "faq.md").write_text("# Returns\n\nYou can return any item within 30 days.")
    (folder / "prices.csv").write_text("plan,price\nbasic,9\npro,29\n")
    assistant = make_assistant()
    out = io.StringIO()
    call_command("upload_documents", assistant.slug, str(folder), "--wait", "--interval", "0.5", stdout=out)
    assert "documents ready 2, pending 0" in out.getvalue(), out.getvalue()
    assert " done: 2 fetched" in out.getvalue()
    assert set(Document.objects.filter(source__assistant=assistant).values_list("status", flat=True)) == {"ready"}
