"""The account in a real browser: a forgotten password is reset from an email (a real SMTP server on
loopback) and the user logs in with the new one; the account page changes the password."""

from playwright.sync_api import expect

from tests.browser.dashboard import ERROR_RED, PHONE, shots, signed_in
from tests.factories import make_team
from tests.mail import body, first_link


def test_a_forgotten_password_is_reset_by_email(browser, platform, owner, smtp_server):
    make_team(owner, "Acme")
    smtp_server.mailbox.messages.clear()
    page = browser.new_context(viewport=PHONE, locale="en-US").new_page()
    page.goto(f"{platform}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(owner.email)
    shots(page, "password-reset-form")
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("h1")).to_have_text("Check your email")

    message = smtp_server.mailbox.wait_for(owner.email)
    assert message["Subject"] == "Reset your Chatsite password" and f"Hello {owner.username}" in body(message)
    link = first_link(message)
    assert link.startswith(f"{platform}/password-reset/")
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    page.get_by_label("New password", exact=True).fill("a-brand-new-secret-5")
    page.get_by_label("New password confirmation").fill("a-different-secret-5")
    page.get_by_role("button", name="Save my new password").click()
    error = page.locator("#id_new_password2_error")
    expect(error).to_have_text("The two password fields didn’t match.")
    expect(error).to_have_css("color", ERROR_RED)
    shots(page, "password-reset-confirm-error")
    page.get_by_label("New password", exact=True).fill("a-brand-new-secret-5")
    page.get_by_label("New password confirmation").fill("a-brand-new-secret-5")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.locator("h1")).to_have_text("Your password is changed")

    page.get_by_role("link", name="Log in").last.click()
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill("correct-horse-9")  # the old one no longer works
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_contain_text("enter a correct username and password")
    shots(page, "login-error")
    page.get_by_label("Password").fill("a-brand-new-secret-5")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".switcher-name")).to_have_text("Acme")
    page.goto(link)  # the link worked once
    expect(page.locator("h1")).to_have_text("This link cannot be used")
    page.context.close()


def test_the_account_page_changes_the_password(browser, platform, owner):
    page = signed_in(browser, platform, owner)
    page.goto(platform)
    page.locator(".account-menu summary").click()
    page.get_by_role("link", name="Account and password").click()
    page.get_by_label("Old password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("another-long-secret-3")
    page.get_by_label("New password confirmation").fill("another-long-secret-3")
    page.get_by_role("button", name="Change password").click()
    error = page.locator("#id_old_password_error")
    expect(error).to_contain_text("Your old password was entered incorrectly")
    expect(error).to_have_css("color", ERROR_RED)
    shots(page, "account-error")
    page.get_by_label("Old password").fill("correct-horse-9")
    page.get_by_label("New password", exact=True).fill("another-long-secret-3")
    page.get_by_label("New password confirmation").fill("another-long-secret-3")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".flash")).to_have_text("Your password is changed.")
    owner.refresh_from_db()
    assert owner.check_password("another-long-secret-3")
    assert not page.errors
    page.context.close()
