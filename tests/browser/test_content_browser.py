"""Content from the dashboard in a real browser: a website source saved without crawling, edited with
include / exclude patterns (a mistake said in red at its field, the form kept as typed), crawled
within its folder from a site on loopback; the documents list searched, retried and deleted from;
the Test tab's answer with its passages and scores. Screenshots at desktop and phone size."""

import pytest
from playwright.sync_api import expect

from ingestion.models import CrawlRun, Document, Source
from ingestion.tasks import source_crawl_task
from tests.browser.dashboard import ERROR_RED, shots, signed_in
from tests.factories import make_assistant, make_team
from tests.ingestion.crawling.test_crawler import Site, page

# The platform (started after this) and this process accept the loopback site as a website.
pytestmark = pytest.mark.usefixtures("loopback_sites_may_be_crawled")


@pytest.fixture
def help_site():
    site = Site(
        {
            "/": page("Home", ["/help/", "/login/"]),
            "/help/": page("Help centre", ["/help/billing/", "/help/old/faq/", "/login/", "/signup/"]),
            "/help/billing/": page("Billing", ["/pricing/"]),
            "/help/old/faq/": page("Old FAQ"),
            "/login/": page("Log in"),
            "/signup/": page("Sign up"),
            "/pricing/": page("Pricing"),
        }
    )
    yield site
    site.server.shutdown()


def test_a_website_is_saved_edited_with_patterns_and_crawled_within_its_folder(
    browser, platform, owner, help_site, settings
):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    assistant = make_assistant(make_team(owner, "Acme"), "Acme Help")
    browser_page = signed_in(browser, platform, owner)
    browser_page.goto(f"{platform}/assistants/{assistant.pk}/")
    browser_page.get_by_label("Website address").fill(help_site.url + "/help/")
    browser_page.get_by_role("button", name="Save without crawling").click()
    expect(browser_page.locator(".flash")).to_contain_text("Saved without crawling")
    source = Source.objects.get(assistant=assistant)
    assert source.last_run is None and not CrawlRun.objects.filter(source=source).exists()
    expect(browser_page.locator(".source-scope")).to_contain_text("pages under this address")

    browser_page.get_by_role("link", name="Edit settings").click()
    browser_page.get_by_label("Only pages matching").fill("help/*")
    browser_page.get_by_label("Never pages matching").fill("/help/old/*")
    browser_page.get_by_role("button", name="Save", exact=True).click()
    error = browser_page.locator("[data-field=include] .field-error")
    expect(error).to_contain_text("must start with / or *")
    expect(error).to_have_css("color", ERROR_RED)
    expect(browser_page.locator("[data-field=exclude] .field-error")).to_have_count(0)
    expect(browser_page.get_by_label("Never pages matching")).to_have_value("/help/old/*")
    expect(browser_page.get_by_label("Only pages matching")).to_have_value("help/*")
    shots(browser_page, "source-edit-error")

    browser_page.get_by_label("Only pages matching").fill("")
    browser_page.get_by_role("button", name="Save and crawl now").click()
    expect(browser_page.locator(".flash")).to_contain_text("crawl is queued")
    expect(browser_page.locator(".source-scope")).to_contain_text("never /help/old/*")
    source.refresh_from_db()
    assert source.settings["exclude"] == ["/help/old/*"] and source.last_run.status == "queued"

    source_crawl_task(source.last_run_id)  # the worker's part, here
    fetched = sorted(Document.objects.filter(source=source).values_list("url", flat=True))
    assert fetched == [help_site.url + "/help/", help_site.url + "/help/billing/"]
    assert not {"/login/", "/signup/", "/pricing/", "/help/old/faq/"} & set(help_site.requests)
    run = CrawlRun.objects.get(pk=source.last_run_id)
    assert run.pages_found == run.pages_fetched + run.pages_skipped + run.pages_failed
    browser_page.reload()
    expect(browser_page.get_by_text("excluded by pattern")).to_be_visible()
    shots(browser_page, "source-crawled")

    browser_page.get_by_text("Delete…", exact=True).click()
    browser_page.get_by_label("Yes, delete").check()
    browser_page.get_by_role("button", name="Delete for good").click()
    expect(browser_page.locator(".flash")).to_contain_text("and its 2 documents")
    assert (
        not Source.objects.filter(pk=source.pk).exists() and not Document.objects.filter(source_id=source.pk).exists()
    )
    assert browser_page.errors == []


def test_the_documents_list_searches_retries_and_deletes(browser, platform, owner):
    assistant = make_assistant(make_team(owner, "Acme"), "Acme Help")
    source = Source.objects.create(
        assistant=assistant, url="https://docs.example.com/", name="https://docs.example.com/"
    )
    for n in range(60):
        Document.objects.create(
            source=source,
            url=f"https://docs.example.com/guide/{n:02}/",
            title=f"Guide chapter {n:02}",
            status="ready",
            chunk_count=4,
        )
    failed = Document.objects.create(
        source=source,
        url="https://docs.example.com/refunds/",
        title="Refund policy",
        status="failed",
        error="HTTP 500 from the site",
    )
    browser_page = signed_in(browser, platform, owner)
    browser_page.goto(f"{platform}/assistants/{assistant.pk}/")
    browser_page.get_by_role("navigation", name="Assistant pages").get_by_role("link", name="Documents").click()
    expect(browser_page.locator(".log-count")).to_contain_text("61 documents · page 1 of 2")
    expect(browser_page.locator("tbody tr").first).to_contain_text("HTTP 500 from the site")
    shots(browser_page, "documents-list")

    browser_page.get_by_label("Search").fill("refund")
    browser_page.get_by_role("button", name="Search").click()
    expect(browser_page.locator(".log-count")).to_contain_text("1 document match")
    browser_page.get_by_role("button", name="Retry", exact=True).click()
    expect(browser_page.locator(".flash")).to_contain_text("queued to be indexed again")
    expect(browser_page.get_by_label("Search")).to_have_value("refund")  # back where it was
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.error == ""

    browser_page.get_by_label("Search").fill("chapter 07")
    browser_page.get_by_role("button", name="Search").click()
    row = browser_page.locator("tbody tr", has_text="Guide chapter 07")
    row.get_by_text("Delete", exact=True).click()
    expect(row.get_by_role("button", name="Delete it")).to_be_visible()
    shots(browser_page, "documents-delete-confirm", phone=False)
    row.get_by_role("button", name="Delete it").click()
    expect(browser_page.locator(".flash")).to_contain_text("Deleted “Guide chapter 07”")
    assert not Document.objects.filter(title="Guide chapter 07").exists()
    browser_page.set_viewport_size({"width": 390, "height": 844})
    browser_page.goto(f"{platform}/assistants/{assistant.pk}/content/?status=failed")
    shots(browser_page, "documents-failed-filter")
    assert browser_page.errors == []


def test_the_test_tab_answers_with_passages_and_scores(browser, platform, owner, assistant):
    browser_page = signed_in(browser, platform, owner)
    browser_page.goto(f"{platform}/assistants/{assistant.pk}/")
    browser_page.get_by_role("navigation", name="Assistant pages").get_by_role("link", name="Test").click()
    browser_page.get_by_role("button", name="Ask").click()
    expect(browser_page.locator("#question_error")).to_have_text("Type a question first.")
    browser_page.get_by_label("Ask what a visitor would ask").fill("How much does the Business plan cost?")
    browser_page.get_by_role("button", name="Ask").click()
    expect(browser_page.locator(".verdict")).to_contain_text("Answered")
    expect(browser_page.locator(".answer-text")).to_contain_text("49 euros")
    first = browser_page.locator(".passages-table tbody tr").first
    expect(first).to_contain_text("Pricing")
    expect(first.locator("td[data-label=Keyword]")).to_contain_text("#1")
    expect(first.locator("td[data-label=Meaning]")).to_contain_text("#1")
    expect(browser_page.locator(".trial-question")).to_contain_text("How much does the Business plan cost?")
    expect(browser_page.get_by_label("Ask a follow-up")).to_have_value("")  # the box waits for the next one
    shots(browser_page, "playground-answered")

    # A follow-up, answered with the conversation: searched with the question it continues.
    browser_page.get_by_label("Ask a follow-up").fill("And the Starter plan?")
    browser_page.get_by_role("button", name="Ask").click()
    expect(browser_page.locator(".trial-turns")).to_contain_text("How much does the Business plan cost?")
    expect(browser_page.locator(".trial-turns")).to_contain_text("49 euros")
    expect(browser_page.locator(".trial-question")).to_contain_text("And the Starter plan?")
    expect(browser_page.locator(".verdict")).to_contain_text(
        "searched as “How much does the Business plan cost? And the Starter plan?”"
    )
    expect(browser_page.locator(".answer-text")).to_contain_text("10 euros")
    first = browser_page.locator(".passages-table tbody tr").first
    expect(first.locator("td[data-label=Keyword]")).to_contain_text("#")
    expect(first.locator("td[data-label=Meaning]")).to_contain_text("#")
    expect(first.locator("td[data-label=Fused]")).not_to_be_empty()
    shots(browser_page, "playground-follow-up")

    browser_page.get_by_role("button", name="Start over").click()
    expect(browser_page.locator(".trial-conversation")).to_have_count(0)
    browser_page.get_by_label("Ask what a visitor would ask").fill("Who won the football world cup in 1998?")
    browser_page.get_by_role("button", name="Ask").click()
    expect(browser_page.locator(".verdict")).to_contain_text("Not answered")
    expect(browser_page.locator(".trial-turns")).to_have_count(0)  # a new conversation
    shots(browser_page, "playground-not-answered")
    assert not assistant.conversations.exists()
    assert browser_page.errors == []


def test_a_cited_slide_opens_readable_at_the_slide(browser, platform, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from ingestion import services
    from ingestion.tasks import document_prepare_task
    from tests.assistants.web.test_document_view import slides_file

    assistant = make_assistant(make_team(owner, "Acme"), "Acme Help")
    source = services.source_documents_get_or_create(assistant=assistant)
    with transaction.atomic():
        run = services.documents_upload(source=source, files=[SimpleUploadedFile("deck.pptx", slides_file())])
    document = Document.objects.get(last_run=run)
    document_prepare_task(document.pk)  # parsed into slides here (the worker's part)
    browser_page = signed_in(browser, platform, owner)
    browser_page.goto(f"{platform}/d/{document.public_token}/deck.pptx#slide=2")
    expect(browser_page.locator("h1")).to_have_text("deck")
    target = browser_page.locator("[id='slide=2']")
    expect(target).to_contain_text("Nine euros a month. <script>")  # the file's text, shown as text
    expect(target).to_have_css("border-top-color", "rgb(37, 99, 235)")  # :target, the cited slide
    expect(browser_page.get_by_role("link", name="Download the original")).to_have_attribute(
        "href", f"/d/{document.public_token}/deck.pptx?download=1"
    )
    shots(browser_page, "document-readable-slide")
    assert browser_page.errors == []


def test_a_slide_deck_added_by_its_address_opens_readable_at_the_cited_slide(
    browser, platform, owner, settings, tmp_path, eager_tasks
):
    from urllib.parse import urlsplit

    from assistants.answering.retrieval import retrieve
    from ingestion.tasks import document_prepare_task
    from tests.assistants.web.test_document_view import slides_file
    from tests.servers import serve_directory

    settings.OUTBOUND_ALLOW_PRIVATE = True  # the file server is on loopback
    (tmp_path / "deck.pptx").write_bytes(slides_file())
    server, base = serve_directory(tmp_path)
    try:
        assistant = make_assistant(make_team(owner, "Acme"), "Acme Help")
        browser_page = signed_in(browser, platform, owner)
        browser_page.goto(f"{platform}/assistants/{assistant.pk}/")
        browser_page.get_by_label("The address of a PDF or another document").fill(f"{base}/deck.pptx")
        browser_page.get_by_role("button", name="Download and index").click()
        expect(browser_page.locator("h1")).to_have_text("Uploaded documents")  # the documents source's page
        document = Document.objects.get(source__assistant=assistant)
        document_prepare_task(document.pk)  # downloaded and parsed here (the worker's part)
    finally:
        server.shutdown()
    document.refresh_from_db()
    assert document.status == "ready", document.error
    link = next(hit.link for hit in retrieve(assistant, "How much does it cost a month?") if "Nine" in hit.text)
    assert link.endswith("/deck.pptx#slide=2") and not link.startswith(base)
    path = urlsplit(link).path
    browser_page.goto(f"{platform}/assistants/{assistant.pk}/content/")
    listed = browser_page.locator("tbody tr").first.get_by_role("link").first.get_attribute("href")
    assert urlsplit(listed).path == path  # the documents list opens the same page
    browser_page.goto(f"{platform}{path}#slide=2")  # the file server is gone: the page is the platform's own
    target = browser_page.locator("[id='slide=2']")
    expect(target).to_contain_text("Nine euros a month. <script>")  # the file's text, shown as text
    expect(target).to_have_css("border-top-color", "rgb(37, 99, 235)")  # :target, the cited slide
    expect(browser_page.locator(".doc-note")).to_contain_text(f"Added from {base}/deck.pptx")
    download = browser_page.get_by_role("link", name="Download the original")
    expect(download).to_have_attribute("href", f"{path}?download=1")
    shots(browser_page, "document-readable-by-address")
    assert browser_page.errors == []
