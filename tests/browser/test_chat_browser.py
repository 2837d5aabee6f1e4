"""The chat as a visitor sees it, in headless Chromium, on the full page and in the widget: the name
in the header on a phone, readable colours with any brand in dark mode, a new conversation, a long
answer shown from its beginning, and the access-code page in the assistant's look and language.
Screenshots go to test-artifacts/."""

import re

import pytest
from playwright.sync_api import expect

from assistants import services
from assistants.models import Conversation
from chatsite.lib.contrast import contrast
from tests.browser.helpers import ARTIFACTS, INSTALL, PRICING, answered, chat_frame, chat_ready, host_page, typed
from tests.factories import index_pages, make_assistant, make_team

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 375, "height": 560}  # an iPhone SE's page area, below the browser's bars
LONG_NAME = "Acme Corporation Customer Support"
QUESTION = "How much does the Business plan cost per month?"


def warranty_page(n: int) -> str:
    """A page whose answer is long: a sentence that introduces a claim form, which the offline answerer
    brings along whole (a code block)."""
    sentences = " ".join(
        f"The warranty rule number {n}.{i} says that a gadget bought from an authorised shop is repaired or replaced "
        f"free of charge when it fails within the warranty period, provided the receipt is kept."
        for i in range(1, 2)
    )
    form = "\n".join(f"field_{line:02d} = ..." for line in range(12))
    return (
        f"<html><head><title>Warranty part {n}</title></head><body><main><h1>Warranty part {n}</h1><p>{sentences}</p>"
        f"<p>A warranty claim for a gadget that fails is written on this form:</p><pre>{form}</pre></main></body></html>"
    )


def make(owner, host_site, **fields):
    assistant = make_assistant(team=make_team(owner=owner), name=fields.pop("name", "Gadget Help"))
    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.greeting = "Hi! Ask me about the gadget."
    for name, value in fields.items():
        setattr(assistant, name, value)
    assistant.save()
    return assistant


def hex_color(css: str) -> str:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def colors(locator) -> tuple[str, str]:
    """(text colour, background colour) of an element; a transparent background is the page's."""
    text, background = locator.evaluate(
        """el => {
          const style = getComputedStyle(el);
          let node = el, bg = style.backgroundColor;
          while (node && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) {
            node = node.parentElement;
            bg = node ? getComputedStyle(node).backgroundColor : "rgb(255, 255, 255)";
          }
          return [style.color, bg];
        }"""
    )
    return hex_color(text), hex_color(background)


def test_a_long_name_is_not_cut_in_the_header_on_a_phone(page, platform, host_site, owner):
    assistant = make(owner, host_site, name=LONG_NAME, logo_url="")
    page.set_viewport_size(PHONE)
    for url in (f"{platform}/a/{assistant.slug}/", host_page(host_site, platform, assistant)):
        page.goto(url)
        if "/a/" not in url:
            page.locator(".cs-launcher").click()
        scope = page if "/a/" in url else chat_frame(page)
        title = scope.locator(".chat-header h1")
        expect(title).to_have_text(LONG_NAME)
        fits = title.evaluate("h => h.scrollWidth <= h.clientWidth + 1 && h.scrollHeight <= h.clientHeight + 1")
        assert fits, "the name is cut"
        person = scope.get_by_role("button", name="Talk to a person")
        expect(person).to_be_visible()  # its words became its name: an icon on a phone
        name = "chat-phone-header.png" if "/a/" in url else "widget-phone-header.png"
        page.screenshot(path=str(ARTIFACTS / name))
    assert not page.errors


@pytest.mark.parametrize(
    "theme, brand",
    [("dark", "#1e3a8a"), ("dark", "#ffdd00"), ("light", "#ffdd00")],
    ids=["dark-navy", "dark-yellow", "light-yellow"],
)
def test_text_and_chips_read_at_aa_in_dark_mode_with_any_brand(page, platform, host_site, owner, theme, brand):
    assistant = make(owner, host_site, theme=theme, primary_color=brand, suggested_questions=[QUESTION])
    index_pages(assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL})
    page.goto(f"{platform}/a/{assistant.slug}/")
    chat_ready(page)
    checks = {"chip": page.locator(".chip").first, "send": page.locator("#send")}
    for name, element in checks.items():
        text, background = colors(element)
        assert contrast(text, background) >= 4.5, (name, text, background)
    page.screenshot(path=str(ARTIFACTS / f"chat-{theme}-{brand[1:]}.png"))
    page.locator(".chip").first.click()
    expect(page.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    for name, element in {
        "question": page.locator(".msg.user"),
        "answer": page.locator(".msg.assistant .text").last,
        "citation": page.locator(".msg.assistant a.cite").first,
        "sources": page.locator(".msg.assistant .sources p").first,
    }.items():
        text, background = colors(element)
        assert contrast(text, background) >= 4.5, (name, text, background)
    page.screenshot(path=str(ARTIFACTS / f"chat-{theme}-{brand[1:]}-answered.png"))

    page.goto(host_page(host_site, platform, assistant))
    launcher = page.locator(".cs-launcher")
    expect(launcher).to_have_css("background-color", re.compile(r"rgb"))
    text, background = colors(launcher)
    assert background == brand and contrast(text, background) >= 4.5  # the launcher's icon too
    assert not page.errors


def test_a_new_conversation_starts_afresh_and_stays_fresh_after_a_reload(page, platform, host_site, owner):
    assistant = make(owner, host_site, suggested_questions=[QUESTION])
    index_pages(assistant, {"http://docs.test/pricing/": PRICING})
    page.goto(host_page(host_site, platform, assistant))
    page.locator(".cs-launcher").click()
    frame = chat_frame(page)
    chat_ready(frame)
    new = frame.get_by_role("button", name="New conversation")
    expect(new).to_be_hidden()  # nothing to start afresh from yet
    frame.locator(".chip").first.click()
    expect(frame.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    expect(new).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "widget-new-conversation-button.png"))

    new.click()
    expect(frame.locator(".msg")).to_have_count(1)  # the greeting only
    expect(frame.locator(".chip")).to_be_visible()
    expect(frame.locator("#question")).to_be_focused()
    expect(frame.locator("#status")).to_have_text("New conversation: ask your question.")

    page.reload()  # not yet asked: the old conversation does not come back
    page.locator(".cs-launcher").click()
    chat_ready(chat_frame(page))
    expect(chat_frame(page).locator("#question")).to_be_focused()  # the loader's "focus": the chat heard hello
    expect(chat_frame(page).locator(".msg.user")).to_have_count(0)

    question = chat_frame(page).locator("#question")
    typed(question, "And the Starter plan?", lambda: question.fill("And the Starter plan?"))
    question.press("Enter")
    answered(page, 1, "And the Starter plan?")
    assert Conversation.objects.filter(assistant=assistant).count() == 2
    page.reload()
    page.locator(".cs-launcher").click()
    expect(chat_frame(page).locator(".msg.user")).to_have_text(["And the Starter plan?"])
    assert not page.errors


def test_a_long_answer_is_shown_from_its_beginning(page, platform, host_site, owner):
    assistant = make(owner, host_site)
    index_pages(assistant, {f"http://docs.test/warranty/{n}/": warranty_page(n) for n in (1, 2, 3)})
    page.set_viewport_size(SMALL_PHONE)
    page.goto(f"{platform}/a/{assistant.slug}/")
    chat_ready(page)
    page.locator("#question").fill("How do I write a warranty claim for a gadget that fails?")
    page.locator("#question").press("Enter")
    answer = page.locator(".msg.assistant:not(.greeting)").last
    expect(answer.locator(".feedback")).to_have_count(1, timeout=30_000)
    place = page.evaluate(
        """() => {
          const log = document.getElementById("log"), box = log.getBoundingClientRect();
          const answer = [...log.querySelectorAll(".msg.assistant")].pop().getBoundingClientRect();
          return {logTop: box.top, logHeight: box.height, answerTop: answer.top, answerHeight: answer.height,
                  scrollTop: log.scrollTop, bottom: log.scrollHeight - log.clientHeight};
        }"""
    )
    assert place["answerHeight"] > place["logHeight"], place  # a long answer indeed
    assert place["logTop"] <= place["answerTop"] <= place["logTop"] + place["logHeight"] / 2, place
    assert place["scrollTop"] < place["bottom"] - 50, place  # not scrolled to its end
    page.screenshot(path=str(ARTIFACTS / "chat-long-answer-phone.png"))

    page.reload()  # a resumed conversation is shown from its last question too
    expect(page.locator(".msg.assistant .feedback")).to_have_count(1)
    top = page.evaluate(
        "() => { const l = document.getElementById('log'); return [l.getBoundingClientRect().top, "
        "[...l.querySelectorAll('.msg.user')].pop().getBoundingClientRect().top, l.getBoundingClientRect().bottom]; }"
    )
    assert top[0] <= top[1] < top[2], top
    assert not page.errors


def test_the_access_code_page_wears_the_brand_and_speaks_the_language(page, platform, host_site, owner):
    assistant = make(owner, host_site, primary_color="#ffdd00", language="fr", theme="dark")
    services.assistant_access_code_set(assistant=assistant, code="sesame-42")
    page.goto(f"{platform}/a/{assistant.slug}/")
    expect(page.locator("h1")).to_have_text("Cet assistant est privé")
    button = page.get_by_role("button", name="Continuer")
    expect(button).to_have_css("background-color", "rgb(255, 221, 0)")
    text, background = colors(button)
    assert contrast(text, background) >= 4.5
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.locator("#access-code").fill("wrong")
    button.click()
    error = page.locator("#access-error")
    expect(error).to_have_text("Ce code d’accès n’est pas le bon. Vérifiez-le et réessayez.")
    expect(page.locator("#access-code")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(ARTIFACTS / "access-fr-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / "access-fr-phone.png"))
    page.locator("#access-code").fill("sesame-42")
    page.get_by_role("button", name="Continuer").click()
    chat_ready(page)
    expect(page.locator("#send")).to_have_text("Envoyer")

    page.goto(host_page(host_site, platform, assistant))  # the same gate inside the widget, full screen
    page.locator(".cs-launcher").click()
    expect(chat_frame(page).locator("h1")).to_have_text("Cet assistant est privé")
    page.screenshot(path=str(ARTIFACTS / "widget-access-fr-phone.png"))
    chat_frame(page).get_by_role("button", name="Fermer le chat").click()  # never stuck behind the gate
    expect(page.locator("iframe.cs-panel")).to_be_hidden()
    expect(page.locator(".cs-launcher")).to_be_visible()
    assert not page.errors
