"""The team in a real browser: an owner invites someone by email (a real SMTP server on loopback), the
invitee signs up from the link and joins with the role given; roles change, the last owner stays, a
member is removed after a confirmation; the team switcher and the account menu; API keys."""

from playwright.sync_api import expect

from assistants.models import ApiKey, Membership
from tests.browser.dashboard import ERROR_RED, PHONE, shots, signed_in
from tests.browser.helpers import ARTIFACTS
from tests.factories import make_assistant, make_team
from tests.mail import body, first_link


def test_an_owner_invites_and_the_invitee_joins_with_the_role_given(browser, platform, owner, smtp_server):
    team = make_team(owner, "Acme")
    make_assistant(team, "Acme Help")
    smtp_server.mailbox.messages.clear()
    page = signed_in(browser, platform, owner)
    page.goto(platform)
    page.get_by_role("navigation", name="Team").get_by_role("link", name="Team").click()
    expect(page.locator("h1")).to_have_text("Team")

    invite = page.locator("#invite-form")
    invite.get_by_label("Email address").fill("grace@")
    invite.get_by_label("Role").select_option("admin")
    invite.get_by_role("button", name="Send invitation").click()
    error = page.locator("#id_email_error")
    expect(error).to_have_text("Enter a valid email address.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(page.locator("#invite-form").get_by_label("Email address")).to_have_value("grace@")
    expect(page.locator("#invite-form").get_by_label("Role")).to_have_value("admin")
    shots(page, "team-invite-error")
    page.locator("#invite-form").get_by_label("Email address").fill("grace@example.com")
    page.locator("#invite-form").get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash")).to_have_text("Invitation sent to grace@example.com.")
    expect(page.locator(".invitations")).to_contain_text("grace@example.com")
    shots(page, "team-members")

    message = smtp_server.mailbox.wait_for("grace@example.com")
    link = first_link(message)
    assert link.startswith(f"{platform}/invitation/") and "as an admin" in body(message)

    invitee = browser.new_context(viewport=PHONE, locale="en-US").new_page()
    invitee.goto(link)
    expect(invitee.locator("h1")).to_have_text("Join Acme")
    expect(invitee.locator(".invitation")).to_contain_text("grace@example.com")
    invitee.get_by_label("Choose a username").fill("grace")
    invitee.get_by_label("Choose a password").fill("short")
    invitee.get_by_role("button", name="Create my account and join").click()
    error = invitee.locator("#id_password_error")
    expect(error).to_contain_text("too short")
    expect(error).to_have_css("color", ERROR_RED)
    expect(invitee.get_by_label("Choose a username")).to_have_value("grace")
    shots(invitee, "invitation-signup-error")
    invitee.get_by_label("Choose a password").fill("analytical-engine-1843")
    invitee.get_by_role("button", name="Create my account and join").click()
    expect(invitee.locator(".flash")).to_have_text("Welcome to Acme!")
    expect(invitee.locator(".switcher-name")).to_have_text("Acme")
    expect(invitee.locator("main")).to_contain_text("Acme Help")
    shots(invitee, "invitation-joined")
    grace = Membership.objects.get(team=team, user__username="grace")
    assert grace.role == "admin"
    invitee.context.close()

    # The owner changes Grace's role, cannot demote the last owner, and removes Grace after a confirmation.
    page.reload()
    row = page.locator(f"#member-{grace.pk}")
    row.get_by_label("Role of grace").select_option("member")
    row.get_by_role("button", name="Change").click()
    expect(page.locator(".flash")).to_have_text("grace is now member.")
    mine = Membership.objects.get(team=team, user=owner)
    page.locator(f"#member-{mine.pk}").get_by_label(f"Role of {owner.username}").select_option("admin")
    page.locator(f"#member-{mine.pk}").get_by_role("button", name="Change").click()
    error = page.locator(f"#member-{mine.pk} .field-error")
    expect(error).to_have_text("The team needs an owner: make someone else an owner first.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(page.locator(f"#member-{mine.pk}").get_by_label(f"Role of {owner.username}")).to_have_value("admin")
    shots(page, "team-last-owner-error")
    row = page.locator(f"#member-{grace.pk}")
    row.get_by_text("Remove", exact=True).click()
    expect(row.locator(".inline-confirm form")).to_contain_text("Remove grace from Acme? They lose access at once.")
    shots(page, "team-remove-confirm", phone=False)
    row.get_by_role("button", name="Remove grace").click()
    expect(page.locator(".flash")).to_have_text("grace was removed from Acme.")
    assert not Membership.objects.filter(pk=grace.pk).exists()
    assert not page.errors
    page.context.close()


def test_the_team_switcher_and_the_account_menu(browser, platform, owner):
    make_assistant(make_team(owner, "Acme"), "Acme Help")
    make_assistant(make_team(owner, "Beta Labs"), "Beta Bot")
    page = signed_in(browser, platform, owner)
    page.goto(platform)
    expect(page.locator(".switcher-name")).to_have_text("Acme")
    page.locator(".switcher summary").click()
    menu = page.locator(".switcher .menu-panel")
    expect(menu.locator(".menu-item")).to_have_text(["AcmeOwner", "Beta LabsOwner", "+ New team"])
    shots(page, "nav-team-switcher", phone=False)
    menu.get_by_role("button", name="Beta Labs").click()
    expect(page.locator(".switcher-name")).to_have_text("Beta Labs")
    expect(page.locator("main")).to_contain_text("Beta Bot")
    expect(page.locator("main")).not_to_contain_text("Acme Help")

    page.locator(".account-menu summary").click()
    expect(page.locator(".switcher .menu-panel")).to_be_hidden()
    shots(page, "nav-account-menu", phone=False)
    page.keyboard.press("Escape")
    expect(page.locator(".account-menu .menu-panel")).to_be_hidden()
    page.set_viewport_size(PHONE)
    page.locator(".account-menu summary").click()
    page.screenshot(path=str(ARTIFACTS / "nav-account-menu-phone.png"))
    page.get_by_role("link", name="Account and password").click()
    expect(page.locator("h1")).to_have_text(owner.username)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Help").click()
    expect(page.locator("nav.mainnav a[aria-current=page]")).to_have_count(0)
    expect(page.locator(".help-link")).to_have_attribute("aria-current", "page")
    assert not page.errors
    page.context.close()


def test_api_keys_are_copied_once_and_revoked_after_a_confirmation(browser, platform, owner):
    team = make_team(owner, "Acme")
    page = signed_in(browser, platform, owner)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=platform)
    page.goto(platform)
    page.get_by_role("link", name="API keys").click()
    page.get_by_role("button", name="Create key").click()
    error = page.locator("#id_name_error")
    expect(error).to_have_text("This field is required.")
    expect(error).to_have_css("color", ERROR_RED)
    page.get_by_label("Name").fill("CMS sync")
    page.get_by_label("Write").check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key")
    expect(key).to_contain_text("cs_")
    raw = key.inner_text().strip()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    shots(page, "api-keys-new")
    page.reload()  # the key is shown once, and not created again
    expect(page.locator("#new-key")).to_have_count(0)
    assert ApiKey.objects.filter(team=team).count() == 1

    row = page.locator(".keys-table tbody tr", has_text="CMS sync")
    row.get_by_text("Revoke", exact=True).click()
    expect(row.locator(".inline-confirm form")).to_contain_text("Anything using it stops working at once.")
    shots(page, "api-keys-revoke-confirm", phone=False)
    assert ApiKey.objects.get(team=team).revoked_at is None  # nothing revoked before the confirmation
    row.get_by_role("button", name="Revoke CMS sync").click()
    expect(page.locator(".flash")).to_contain_text("Key CMS sync revoked")
    expect(page.locator(".keys-table .badge.failed")).to_have_text("revoked")
    assert ApiKey.objects.get(team=team).revoked_at is not None
    assert not page.errors
    page.context.close()
