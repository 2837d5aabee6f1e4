"""Conversations in a real browser: a visitor chats in the widget, rates an answer with a comment, is
not answered and leaves their details; the team finds the conversation in the log (filters, search,
export), reads everything the visitor left on its page, and fixes the answer, which a real worker
indexes at once, so that the visitor's next question gets it."""

import csv
import io

from playwright.sync_api import expect

from assistants import services
from assistants.models import Conversation, Feedback, HandoffSettings, Membership
from ingestion.models import Document, Source
from tests.browser.dashboard import ERROR_RED, shots, signed_in
from tests.browser.helpers import ask, chat_frame, host_page
from tests.conftest import wait_for
from tests.factories import make_user

PRICE = "How much does the Business plan cost per month?"
ICELAND = "Do you deliver the gadget to Iceland?"
FIX = "Yes: we deliver the gadget to Iceland within five working days, for 15 euros."


def visitor_chats(page, platform, host_site, assistant) -> str:
    """The visitor's side: an answer rated down with a comment, an unanswered question, their details."""
    url = host_page(host_site, platform, assistant)
    page.goto(url)
    page.locator(".cs-launcher").click()
    answer = ask(page, PRICE)
    expect(answer.locator(".text")).to_contain_text("49 euros")
    answer.get_by_role("button", name="Not helpful", exact=True).click()
    answer.locator(".comment input").fill("I wanted the yearly price <b>please</b>")
    answer.locator(".comment input").press("Enter")
    wait_for(lambda: Feedback.objects.filter(comment__startswith="I wanted").exists(), 10, 0.1, "the comment")

    ask(page, ICELAND)
    frame = chat_frame(page)
    frame.locator(".handoff-offer button").click()
    frame.locator("#contact input[name=name]").fill("Ada Lovelace")
    frame.locator("#contact input[name=email]").fill("ada@example.com")
    frame.locator("#contact textarea[name=message]").fill("Please tell me about delivery to Reykjavik.")
    frame.locator("#contact button[type=submit]").click()
    wait_for(lambda: Feedback.objects.filter(kind="contact").exists(), 10, 0.1, "the contact details")
    return url


def test_the_team_finds_reads_and_fixes_a_visitors_conversation(
    browser, page, platform, host_site, assistant, owner, start_worker
):
    worker = start_worker()  # indexes the fix, as in production
    # Live handoff off: the rating's comment hands nothing over and "Talk to a person" is the contact
    # form, which this test follows (tests/browser/test_handoff_browser.py follows the live handoff).
    HandoffSettings.objects.create(assistant=assistant, enabled=False)
    host_url = visitor_chats(page, platform, host_site, assistant)
    conversation = Conversation.objects.get(assistant=assistant)
    Conversation.objects.create(assistant=assistant, visitor_token="w" * 24)  # a second, quiet one

    team_page = signed_in(browser, platform, owner)
    team_page.goto(platform)
    team_page.get_by_role("navigation", name="Team").get_by_role("link", name="Conversations").click()
    expect(team_page.locator("h1")).to_have_text("Conversations")
    rows = team_page.locator(".log-table tbody tr")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text=PRICE)
    expect(first.locator(".flag")).to_have_text(["Unanswered", "Handed off", "Lead left"])
    expect(first.locator(".thumbs.down")).to_have_text("1")
    expect(first.locator("td[data-label=Turns]")).to_have_text("2")
    expect(first.locator(".log-page")).to_contain_text("localhost")
    shots(team_page, "conversations-log")

    # Filters: a flag, the search over questions and answers, the rating, a date range that is wrong.
    team_page.get_by_label("Unanswered").check()
    team_page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    team_page.get_by_label("Search questions and answers").fill("iceland deliver")
    team_page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(team_page.get_by_label("Search questions and answers")).to_have_value("iceland deliver")
    expect(team_page.get_by_label("Unanswered")).to_be_checked()
    team_page.get_by_label("Search questions and answers").fill("zebra")
    team_page.get_by_role("button", name="Filter").click()
    expect(team_page.locator(".empty")).to_have_text("No conversation matches these filters.")
    team_page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(2)
    team_page.get_by_label("Rating").select_option("down")
    team_page.get_by_label("From").fill("2026-05-10")
    team_page.get_by_label("To").fill("2026-05-01")
    team_page.get_by_role("button", name="Filter").click()
    error = team_page.locator("#id_until_error")
    expect(error).to_have_text("The end date is before the start date.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(team_page.get_by_label("To")).to_have_value("2026-05-01")  # kept as typed
    expect(team_page.get_by_label("Rating")).to_have_value("down")
    shots(team_page, "conversations-log-error")
    team_page.get_by_label("To").fill("")
    team_page.get_by_label("From").fill("")
    team_page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)

    # The export: the API's CSV, of the conversations the filters select.
    with team_page.expect_download() as download:
        team_page.get_by_role("link", name="Export CSV").click()
    lines = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert lines[0] == ["conversation_id", "created_at", "role", "text", "citations", "page_url"]
    assert [line[3] for line in lines[1:] if line[2] == "user"] == [PRICE, ICELAND]
    assert {line[5] for line in lines[1:]} == {host_url}

    # The conversation's page: everything the visitor left.
    rows.first.get_by_role("link").click()
    expect(team_page.locator("h1")).to_have_text(f"Conversation {conversation.pk}")
    side = team_page.locator(".visitor-card")
    expect(side).to_contain_text(host_url)
    expect(side).to_contain_text("Ada Lovelace")
    expect(side.get_by_role("link", name="ada@example.com")).to_have_attribute("href", "mailto:ada@example.com")
    expect(side).to_contain_text("Please tell me about delivery to Reykjavik.")
    answers = team_page.locator(".msg.assistant")
    expect(answers).to_have_count(2)
    priced = answers.nth(0)
    expect(priced.locator(".rating-note")).to_contain_text("rated this answer not helpful")
    expect(priced.locator(".rating-note blockquote")).to_have_text("I wanted the yearly price <b>please</b>")
    expect(priced.locator(".citations a").first).to_have_attribute("href", "http://docs.test/pricing/#plans")
    unanswered = answers.nth(1)
    expect(unanswered.locator(".unanswered-note")).to_contain_text("No passage of the content matched the question")
    expect(unanswered.locator(".rating-note")).to_have_count(0)
    shots(team_page, "conversation-detail")

    # Fix this answer: a missing answer is said at its field, in red, the question kept.
    unanswered.get_by_text("Fix this answer").click()
    question = unanswered.get_by_label("Question")
    expect(question).to_have_value(ICELAND)
    unanswered.get_by_role("button", name="Add as a Q&A pair").click()
    unanswered = team_page.locator(".msg.assistant").nth(1)
    error = unanswered.locator(".field-error")
    expect(error).to_have_text("Write the answer the assistant should have given.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(unanswered.get_by_label("Question")).to_have_value(ICELAND)
    shots(team_page, "conversation-fix-error")
    unanswered.get_by_label("The right answer").fill(FIX)
    unanswered.get_by_role("button", name="Add as a Q&A pair").click()
    expect(team_page.locator(".flash")).to_contain_text("Added to the Q&A library")
    expect(team_page.locator(".msg.assistant").nth(1).locator(".fixed-note")).to_contain_text("Fixed")
    wait_for(
        lambda: Document.objects.filter(source__kind=Source.Kind.QA, status=Document.Status.READY).exists(),
        90,
        0.5,
        f"the worker to index the fix (see {worker.log_path})",
    )
    team_page.reload()
    expect(team_page.locator(".msg.assistant").nth(1).locator(".fixed-note")).to_contain_text("in use")
    shots(team_page, "conversation-fixed")
    assert not team_page.errors and not page.errors

    # The visitor asks again: the answer is the team's.
    again = ask(page, ICELAND)
    expect(again.locator(".text")).to_contain_text("five working days")
    team_page.context.close()


def test_a_member_reads_the_log_and_fixes_answers_but_sees_no_settings_to_change(browser, platform, assistant, owner):
    member = make_user()
    Membership.objects.create(team=assistant.team, user=member, role="member")
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="m" * 24)
    services.message_add(conversation=conversation, role="user", text="Is there a discount?")
    services.message_add(conversation=conversation, role="assistant", text="I don't know.", unanswered=True)
    page = signed_in(browser, platform, member, phone=True)
    page.goto(f"{platform}/conversations/{conversation.pk}/")
    expect(page.get_by_text("Fix this answer")).to_have_count(1)
    page.goto(f"{platform}/assistants/{assistant.pk}/settings/branding/")
    expect(page.get_by_label("Name")).to_be_disabled()
    expect(page.get_by_role("button", name="Save branding")).to_have_count(0)
    page.context.close()
