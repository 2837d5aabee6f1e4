"""Getting an assistant onto a site, as a team, in headless Chromium: the Install page (snippets,
copying, allowed domains refused at their field), and the first steps after creating an assistant,
whose checklist ticks itself as the content is indexed, the assistant tried and the widget loaded.
Screenshots at desktop (1280×800) and phone (390×844) sizes go to test-artifacts/."""

from django.test import Client
from playwright.sync_api import expect

from assistants.models import Assistant
from tests.browser.helpers import ARTIFACTS, INSTALL, PRICING, chat_ready, host_page
from tests.conftest import wait_for
from tests.factories import index_pages, make_assistant, make_team

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
RED = "rgb(185, 28, 28)"


def signed_in(browser, platform, user, **options):
    """A browser context signed in as ``user`` (a real session of the app)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=DESKTOP, locale="en-US", **options)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": platform}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def shoot(page, name):
    """A screenshot at desktop and at phone size (the page as a whole)."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_the_install_page_copies_the_snippet_and_refuses_a_wrong_domain_at_its_field(
    browser, platform, host_site, owner
):
    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    context, page = signed_in(browser, platform, owner, permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"{platform}/assistants/{assistant.pk}/install/")
    expect(page.locator("h1")).to_have_text("Install Gadget Help")
    expect(page.locator("#no-domains")).to_be_visible()  # the empty state says what to do
    shoot(page, "install")

    copy = page.locator("button[data-copy='snippet-widget']")
    copy.click()
    expect(copy).to_have_text("Copied")
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet == f'<script src="{platform}/widget.js" data-assistant="{assistant.public_key}" async></script>'
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")

    field = page.locator("#id_allowed_domains")
    for typed, message in [
        ("not a domain!!", "“not a domain!!” is not a domain."),
        ("https://x/path", "Write just the host name: x"),
    ]:
        field.fill(typed)
        page.get_by_role("button", name="Save domains").click()
        error = page.locator("#id_allowed_domains_error")
        expect(error).to_contain_text(message)
        expect(error).to_have_css("color", RED)
        expect(page.locator("#id_allowed_domains")).to_have_value(typed)  # the form kept as typed
        expect(page.locator("#id_allowed_domains")).to_have_attribute("aria-invalid", "true")
        # the error sits right under its field
        box, below = field.bounding_box(), error.bounding_box()
        assert 0 <= below["y"] - (box["y"] + box["height"]) < 16 and abs(below["x"] - box["x"]) < 2
    shoot(page, "install-error")

    field.fill(f"localhost:{host_site.port}")
    page.get_by_role("button", name="Save domains").click()
    expect(page.locator(".flash")).to_have_text("Saved: the widget may show on 1 site.")
    expect(page.locator(".install-status h2")).to_have_text("Not seen on a site yet")

    visitor = browser.new_page()
    visitor.goto(host_page(host_site, platform, assistant))
    expect(visitor.locator(".cs-launcher")).to_be_visible()
    visitor.close()
    page.reload()
    expect(page.locator(".install-status h2")).to_contain_text("Installed")
    expect(page.locator(".install-status")).to_contain_text(f"http://localhost:{host_site.port}")
    shoot(page, "install-installed")
    assert not page.errors
    context.close()


def test_a_member_sees_the_install_page_without_the_form(browser, platform, owner):
    from assistants.models import Membership
    from tests.factories import make_user

    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    member = make_user()
    Membership.objects.create(team=assistant.team, user=member, role="member")
    context, page = signed_in(browser, platform, member)
    page.goto(f"{platform}/assistants/{assistant.pk}/install/")
    expect(page.locator("#allowed-domains")).to_contain_text("No site may show the widget yet.")
    expect(page.locator("#id_allowed_domains")).to_have_count(0)
    expect(page.get_by_role("button", name="Copy")).to_have_count(3)
    page.screenshot(path=str(ARTIFACTS / "install-member-desktop.png"), full_page=True)
    context.close()


def test_a_new_assistant_is_led_through_content_trying_and_installing(browser, platform, host_site, owner):
    team = make_team(owner=owner, name="Gadget Co")
    context, page = signed_in(browser, platform, owner)
    page.goto(f"{platform}/")
    page.get_by_role("link", name="New assistant").click()
    page.locator("#id_name").fill("Gadget Help")
    page.get_by_role("button", name="Save").click()

    # asked for its website straight away
    expect(page.locator("h1")).to_have_text("Set up Gadget Help")
    url = page.locator("#id_url")
    expect(url).to_be_focused()
    expect(page.locator("[data-step='content']")).to_have_class("step current")
    shoot(page, "start")

    url.fill("http://127.0.0.1:6379/")
    page.get_by_role("button", name="Add and read my site").click()
    error = page.locator("#id_url_error")
    expect(error).to_contain_text("That address cannot be crawled")
    expect(error).to_have_css("color", RED)
    expect(page.locator("#id_url")).to_have_value("http://127.0.0.1:6379/")
    shoot(page, "start-error")

    page.locator("#id_url").fill("https://docs.gadget.example/")
    page.get_by_role("button", name="Add and read my site").click()
    expect(page.locator("[data-step='content'] [data-detail]")).to_have_text(
        "Reading your content… 0 pages indexed so far."
    )
    expect(page.locator("#id_url")).to_have_count(0)

    # The crawl's worker is not running here: the pages are indexed as the worker would, and the
    # open page ticks the step by itself, without a reload.
    assistant = Assistant.objects.get(name="Gadget Help", team=team)
    index_pages(assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL})
    content = page.locator("[data-step='content']")
    expect(content).to_have_class("step done", timeout=30_000)
    expect(content.locator("[data-detail]")).to_have_text("2 pages indexed.")
    expect(page.locator("[data-step='tried']")).to_have_class("step current")

    with context.expect_page() as opened:
        page.get_by_role("link", name="Open the assistant").click()
    chat = opened.value
    chat_ready(chat)
    chat.locator("#question").fill("How much does the Business plan cost per month?")
    chat.locator("#question").press("Enter")
    expect(chat.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    chat.close()
    expect(page.locator("[data-step='tried']")).to_have_class("step done", timeout=30_000)

    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.save()
    visitor = browser.new_page()
    visitor.goto(host_page(host_site, platform, assistant))
    expect(visitor.locator(".cs-launcher")).to_be_visible()
    visitor.close()
    expect(page.locator("[data-step='installed']")).to_have_class("step done", timeout=30_000)
    expect(page.locator("[data-step='installed'] [data-detail]")).to_contain_text(
        f"Seen on http://localhost:{host_site.port}"
    )
    expect(page.locator("#checklist-complete")).to_be_visible()
    shoot(page, "start-complete")

    page.goto(f"{platform}/assistants/{assistant.pk}/")
    expect(page.get_by_text("Getting started")).to_have_count(0)  # done: it goes away
    assert not page.errors
    context.close()


def test_the_assistants_page_shows_where_to_start(browser, platform, owner):
    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    context, page = signed_in(browser, platform, owner)
    page.goto(f"{platform}/assistants/{assistant.pk}/")
    expect(page.locator(".onboarding")).to_contain_text("0 of 3 done")
    expect(page.locator("#content")).to_contain_text("No content yet")
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "assistant-empty-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / "assistant-empty-phone.png"))
    wait_for(lambda: not page.errors, 1, 0.1, "no script errors")
    context.close()


def test_the_iframe_snippet_works_on_an_allowed_site(page, platform, host_site, owner):
    """The Install page's inline iframe, pasted as is: the chat inside the page, nothing to close,
    follow-up questions in one conversation although the frame gets no cookie."""
    from assistants.models import Conversation
    from assistants.web.install import snippets

    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.save()
    index_pages(assistant, {"http://docs.test/pricing/": PRICING})
    host_site.pages["/help.html"] = (
        "<!doctype html><html><head><title>Help</title></head><body><h1>Help centre</h1>"
        f"{snippets(platform=platform, assistant=assistant)['iframe']}</body></html>"
    )
    page.goto(f"http://localhost:{host_site.port}/help.html")
    chat = page.frame_locator("iframe")
    chat_ready(chat)
    expect(chat.locator("[data-action='close']")).to_have_count(0)
    for question in ("How much does the Business plan cost per month?", "And the Starter plan?"):
        answers = chat.locator(".msg.assistant .feedback")
        count = answers.count()
        chat.locator("#question").fill(question)
        chat.locator("#question").press("Enter")
        expect(answers).to_have_count(count + 1, timeout=30_000)
    assert Conversation.objects.filter(assistant=assistant).count() == 1
    page.screenshot(path=str(ARTIFACTS / "iframe-snippet-desktop.png"))
    assert not page.errors
