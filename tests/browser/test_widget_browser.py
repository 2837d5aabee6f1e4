"""The widget in a real browser (see conftest.py for the servers).

The platform runs on http://127.0.0.1:<port>, on the test database. Host pages carrying the snippet
come from a second server, reached as http://localhost:<port> (the assistant's allowed domain, and
another site than the platform, so the iframe is third-party) or as http://127.0.0.1:<port> (not
allowed). A third server only records requests: answers that embed images pointing at it must not
make the browser fetch them. Answers come from the offline extractive answerer, which quotes the
indexed pages, so a page's text is the "model output".
"""

import json

from django.test import Client
from playwright.sync_api import expect

from assistants.models import Conversation, Feedback
from tests.browser.helpers import (
    ARTIFACTS,
    PWNED,
    answered,
    ask,
    chat_frame,
    chat_ready,
    host_page,
    hostile_page,
    typed,
)
from tests.conftest import wait_for
from tests.factories import index_pages, make_assistant, make_team


def settle(page, predicate, message: str, timeout: float = 10):
    """Wait for ``predicate`` while Playwright delivers the page's events (a plain sleep would not)."""
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


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
    wait_for(
        lambda: Feedback.objects.filter(rating=1, message__conversation=conversation).exists(), 10, 0.1, "the rating"
    )
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
    chat_ready(frame)  # focus may come from the page's autofocus before the chat's script has run
    expect(frame.locator("#question")).to_be_focused()
    typed(
        frame.locator("#question"),
        "How do I install the gadget?",
        lambda: page.keyboard.type("How do I install the gadget?"),
    )
    page.keyboard.press("Enter")
    answered(page, 1, "How do I install the gadget?")
    expect(frame.locator(".msg.assistant").last).to_contain_text("installer")
    expect(frame.locator("#question")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("iframe.cs-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_a_site_not_allowed_shows_nothing_and_tells_its_owner_why(page, platform, host_site, assistant):
    """The loader asks first: on a refused site the visitor sees no launcher and no frame (nothing
    broken), and the console names the setting to change and the entry that would allow the site."""
    warnings = []
    page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    refused_url = host_page(host_site, platform, assistant).replace("localhost", "127.0.0.1")
    embeds = []
    page.on("request", lambda request: embeds.append(request.url) if "/embed/" in request.url else None)
    page.goto(refused_url)
    settle(page, lambda: warnings, "the loader's warning")
    page.wait_for_timeout(300)
    assert len(warnings) == 1, warnings  # the snippet is on the page twice; one loader, one message
    assert "is not in the assistant's Allowed domains" in warnings[0]
    assert f"add 127.0.0.1:{host_site.port} to Allowed domains in the dashboard ({platform}/)" in warnings[0]
    assert page.locator(".cs-launcher, iframe.cs-panel, .cs-widget").count() == 0
    assert [url for url in embeds if "/allowed?" not in url] == []  # the chat was never even requested
    page.screenshot(path=str(ARTIFACTS / "widget-refused-site.png"))
    assert page.evaluate("Chatsite.open(), document.querySelectorAll('iframe').length") == 0
    assert not page.errors


def test_the_csp_still_refuses_the_chat_on_a_site_not_allowed(page, platform, host_site, assistant):
    """A page that frames the chat itself, without the loader, meets frame-ancestors."""
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "frame-ancestors" in message.text else None)
    host_site.pages["/framed.html"] = (
        f'<!doctype html><title>Framed</title><iframe src="{platform}/embed/{assistant.public_key}/"></iframe>'
    )
    page.goto(f"http://127.0.0.1:{host_site.port}/framed.html")
    settle(page, lambda: blocked, "Chromium to refuse the frame")
    assert page.frames[1].locator("#chat").count() == 0


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
