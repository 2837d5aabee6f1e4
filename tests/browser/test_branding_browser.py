"""Branding, suggested questions and the handoff offer in a real browser (headless Chromium, the real
app under uvicorn, offline extractive answers), with the fixtures of conftest.py."""

from playwright.sync_api import expect

from tests.browser.helpers import ARTIFACTS, INSTALL, PRICING, chat_frame, chat_ready, host_page
from tests.factories import index_pages, make_assistant, make_team

QUESTION = "How much does the Business plan cost per month?"


def branded(owner, host_site, **fields):
    assistant = make_assistant(team=make_team(owner=owner), name="Gadget Help")
    assistant.allowed_domains = [f"localhost:{host_site.port}"]
    assistant.greeting = "Hi! Ask me about the gadget."
    for name, value in fields.items():
        setattr(assistant, name, value)
    assistant.save()
    return assistant


def test_the_widget_wears_the_brand_and_a_suggested_question_is_asked(page, platform, host_site, owner):
    assistant = branded(
        owner,
        host_site,
        primary_color="#aa3300",
        launcher_position="left",
        launcher_icon="help",
        theme="dark",
        suggested_questions=[QUESTION, "How do I install the gadget?"],
        show_powered_by=False,
    )
    index_pages(assistant, {"http://docs.test/pricing/": PRICING, "http://docs.test/install/": INSTALL})
    page.goto(host_page(host_site, platform, assistant))
    launcher = page.locator(".cs-launcher")
    expect(launcher.locator("svg[data-icon='help']")).to_have_count(1)  # set when the chat says it is ready
    expect(launcher).to_have_css("background-color", "rgb(170, 51, 0)")
    box = launcher.bounding_box()
    assert box["x"] < 40 and box["x"] + box["width"] < 100  # bottom left

    launcher.click()
    panel = page.locator("iframe.cs-panel").bounding_box()
    assert panel["x"] < 40  # the panel opens on the launcher's side
    frame = chat_frame(page)
    expect(frame.locator("#send")).to_have_css("background-color", "rgb(170, 51, 0)")
    expect(frame.locator("body")).to_have_css("background-color", "rgb(17, 24, 39)")  # the dark theme
    expect(frame.locator("#powered")).to_have_count(0)
    chips = frame.locator(".suggestions .chip")
    expect(chips).to_have_text([QUESTION, "How do I install the gadget?"])
    chat_ready(frame)

    chips.first.click()
    expect(frame.locator(".msg.user")).to_have_text([QUESTION])
    answer = frame.locator(".msg.assistant:not(.greeting)").last
    expect(answer.locator(".feedback")).to_have_count(1, timeout=30_000)
    expect(answer.locator(".text")).to_contain_text("49 euros")
    expect(frame.locator(".suggestions")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "widget-branding.png"))
    assert not page.errors

    page.reload()  # a resumed conversation shows no suggestions again
    page.locator(".cs-launcher").click()
    expect(chat_frame(page).locator(".msg.user")).to_have_count(1)
    expect(chat_frame(page).locator(".suggestions")).to_be_hidden()


def test_an_unanswered_question_offers_a_person(page, platform, host_site, owner):
    assistant = branded(owner, host_site, language="fr", show_powered_by=True)  # no content at all
    page.goto(f"{platform}/a/{assistant.slug}/")
    expect(page.locator("#send")).to_have_text("Envoyer")  # the assistant's language, not the browser's
    expect(page.locator("#powered")).to_contain_text("Chatsite")
    page.locator("#question").fill("Quels sont vos horaires le dimanche ?")
    page.locator("#question").press("Enter")
    offer = page.locator(".msg.assistant .handoff-offer")  # under the answer, not a second message
    expect(offer).to_have_count(1, timeout=30_000)
    expect(offer).to_contain_text("parler à une personne")
    log = page.locator("#log").inner_text()
    assert log.count("Je n’ai rien trouvé") == 1 and "trouvé de réponse" not in log  # "I don't know", once
    assert page.locator(".msg").count() == 3  # the greeting, the question, the answer with its offer
    page.screenshot(path=str(ARTIFACTS / "chat-handoff-offer.png"))
    offer.get_by_role("button").click()  # a person of the team, live (docs/handoff.md), in French too
    expect(page.locator(".msg.handoff-notice")).to_contain_text("Nous cherchons une personne de l’équipe")
    assert not page.errors


def test_an_answered_question_offers_no_person(page, platform, host_site, owner):
    assistant = branded(owner, host_site)
    index_pages(assistant, {"http://docs.test/pricing/": PRICING})
    page.goto(f"{platform}/a/{assistant.slug}/")
    chat_ready(page)
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    expect(page.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    expect(page.locator(".msg.handoff-offer")).to_have_count(0)
