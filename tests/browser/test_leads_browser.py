"""Leads end to end in Chromium: a visitor asks a pricing question on the full page, the lead form
appears inside the conversation, refuses a bad email at its field (keeping what was typed), takes the
details with consent; the team sees the lead on the Leads screen with its score, works it and
exports the CSV. Then the Webhooks screens: a private address refused at its field, an endpoint with
its secret and a delivery log. Screenshots at desktop and phone size go to test-artifacts/."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import expect

from assistants.leads import services as lead_services
from assistants.models import Lead, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.browser.dashboard import ERROR_RED, PHONE, shots, signed_in
from tests.browser.helpers import ARTIFACTS, chat_ready

QUESTION = "How much does the Business plan cost per month?"


def test_a_pricing_question_becomes_a_scored_lead_the_team_exports(page, platform, assistant, owner, browser):
    lead_services.lead_capture_save(
        assistant=assistant,
        triggers=["intent"],
        consent_text="I agree that Gadget may contact me about my request.",
        fields={"name": "optional", "email": "required", "phone": "optional", "company": "optional"},
    )
    page.goto(f"{platform}/a/{assistant.slug}/")
    chat_ready(page)
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    expect(page.locator(".msg.assistant .feedback")).to_have_count(1, timeout=30_000)
    form = page.locator(".lead-form")
    expect(form).to_be_visible(timeout=10_000)
    expect(form.locator(".lead-consent")).to_contain_text("I agree that Gadget may contact me")
    assert page.locator(".contact").is_hidden()  # inline in the conversation, no pop-up

    form.locator("input[name=name]").fill("Ada <b>Lovelace</b>")
    form.locator("input[name=email]").fill("ada@")
    form.locator("input[name=company]").fill("=Analytical Engines")
    form.locator("button[type=submit]").click()
    email_error = form.locator("[data-field=email] .lead-problem")
    expect(email_error).to_have_text("Enter a valid email address, e.g. name@example.com.")
    expect(form.locator("[data-field=consent] .lead-problem")).to_have_text(
        "Please tick the box to agree to be contacted."
    )
    expect(form.locator("input[name=email]")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("input[name=name]")).to_have_value("Ada <b>Lovelace</b>")  # kept
    page.screenshot(path=str(ARTIFACTS / "lead-form-errors-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / "lead-form-errors-phone.png"))

    form.locator("input[name=email]").fill("ada@example.com")
    form.locator("input[name=consent]").check()
    form.locator("button[type=submit]").click()
    expect(page.locator(".lead-message.lead-done")).to_contain_text("Thank you! The team will get back to you.")
    assert page.errors == []

    lead = Lead.objects.get()
    assert lead.email == "ada@example.com" and lead.intent == "how much" and lead.consent_at is not None
    assert lead.score > 0 and lead.page_url.endswith(f"/a/{assistant.slug}/")

    team_page = signed_in(browser, platform, owner)
    team_page.goto(f"{platform}/teams/{assistant.team_id}/leads/")
    row = team_page.locator(".leads-table tbody tr").first
    expect(row).to_contain_text("Ada <b>Lovelace</b>")  # as text, escaped
    expect(row.locator(".score")).to_have_text(str(lead.score))
    expect(row).to_contain_text("how much")
    assert team_page.locator(".leads-table b").count() == 0
    shots(team_page, "leads")

    with team_page.expect_download() as download:
        team_page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) == 1 and rows[0]["email"] == "ada@example.com" and rows[0]["score"] == str(lead.score)
    assert rows[0]["company"] == "'=Analytical Engines" and rows[0]["consent_text"].startswith("I agree")

    row.get_by_role("link").click()
    expect(team_page.locator("h1")).to_have_text("Ada <b>Lovelace</b>")
    expect(team_page.locator(".score-parts li")).to_have_count(4)
    team_page.select_option("#id_status", "qualified")
    team_page.fill("#id_notes", "Wants a demo on Monday")
    team_page.get_by_role("button", name="Save").click()
    expect(team_page.locator(".flash")).to_have_text("Lead saved.")
    shots(team_page, "lead-detail")
    lead.refresh_from_db()
    assert lead.status == "qualified" and lead.notes == "Wants a demo on Monday"

    team_page.goto(f"{platform}/assistants/{assistant.pk}/settings/leads/")
    expect(team_page.locator("#id_triggers_0")).to_be_checked(checked=False)  # answers: not ticked
    expect(team_page.locator("#id_triggers_1")).to_be_checked()  # intent
    team_page.fill("#id_after_answers", "0")
    team_page.get_by_role("button", name="Save lead capture").click()
    expect(team_page.locator("[data-field=after_answers] .field-error")).to_be_visible()
    shots(team_page, "lead-capture-settings")
    assert team_page.errors == []


def test_the_webhook_screens(platform, assistant, owner, browser):
    team_page = signed_in(browser, platform, owner)
    team_page.goto(f"{platform}/teams/{assistant.team_id}/webhooks/")
    expect(team_page.locator(".mainnav a[aria-current=page]")).to_have_text("Webhooks")
    shots(team_page, "webhooks-empty")
    team_page.fill("#id_url", "http://10.1.2.3/hooks")
    team_page.fill("#id_description", "Our CRM")
    team_page.get_by_role("button", name="Add endpoint").click()
    error = team_page.locator("#id_url_error")
    expect(error).to_contain_text("address 10.1.2.3 is private")
    expect(error).to_have_css("color", ERROR_RED)
    expect(team_page.locator("#id_description")).to_have_value("Our CRM")
    shots(team_page, "webhooks-refused")

    team_page.fill("#id_url", "https://93.184.216.34/hooks/chatsite")
    team_page.get_by_role("button", name="Add endpoint").click()
    endpoint = WebhookEndpoint.objects.get()
    expect(team_page.locator(".copy-row code").first).to_have_text(endpoint.secret)
    # A delivery log to look at: one delivered after a failure, one failed.
    ok = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id="msg_2b8Fexample",
        event_type="lead.created",
        payload={},
        status="succeeded",
        attempts=2,
        last_status_code=200,
    )
    WebhookAttempt.objects.create(
        delivery=ok, number=1, status_code=500, error="the receiver answered 500", duration_ms=84
    )
    WebhookAttempt.objects.create(delivery=ok, number=2, status_code=200, duration_ms=61)
    bad = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id="msg_9xQexample",
        event_type="conversation.rated",
        payload={},
        status="failed",
        attempts=1,
    )
    WebhookAttempt.objects.create(delivery=bad, number=1, error="no answer within 10 s", duration_ms=10004)
    team_page.reload()
    expect(team_page.locator(".deliveries-table tbody tr")).to_have_count(2)
    shots(team_page, "webhook-detail")
    team_page.get_by_role("button", name="Rotate secret").click()
    expect(team_page.locator(".copy-row")).to_have_count(2)
    assert team_page.errors == []


def test_the_widget_asks_inside_its_frame_and_the_visitor_can_decline(page, platform, host_site, assistant):
    from tests.browser.helpers import ask, chat_frame, host_page

    lead_services.lead_capture_save(assistant=assistant, triggers=["intent"], consent_text="You may contact me.")
    url = host_page(host_site, platform, assistant)
    page.goto(url)
    page.locator(".cs-launcher").click()
    ask(page, QUESTION)
    frame = chat_frame(page)
    form = frame.locator(".lead-form")
    expect(form).to_be_visible(timeout=10_000)
    form.locator("input[name=email]").fill("grace@example.com")
    form.locator("input[name=consent]").check()
    form.locator("button[type=submit]").click()
    expect(frame.locator(".lead-message.lead-done")).to_be_visible()
    lead = Lead.objects.get()
    assert lead.email == "grace@example.com" and lead.page_url == url  # the host page, told by the loader

    frame.locator("[data-action='new']").click()  # a new conversation is asked again, and declines
    ask(page, "Can I get a quote for the Business plan?")
    expect(frame.locator(".lead-form")).to_be_visible(timeout=10_000)
    frame.get_by_role("button", name="No thanks").click()
    expect(frame.locator(".lead-message.lead-done")).to_have_text("No problem — let's carry on.")  # the old log is gone
    ask(page, "And what is the price of the Starter plan?")
    page.wait_for_timeout(1000)
    expect(frame.locator(".lead-form")).to_have_count(0)  # asked once per conversation
    assert Lead.objects.count() == 1 and page.errors == []
