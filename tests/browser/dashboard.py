"""What the dashboard's browser tests share: a signed-in browser context, screenshots at desktop and
phone sizes (kept in test-artifacts/, to look at), and the red of an error at its field."""

from django.test import Client

from tests.browser.helpers import ARTIFACTS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ERROR_RED = "rgb(185, 28, 28)"  # --danger in static/css/app.css


def signed_in(browser, platform: str, user, *, phone: bool = False):
    """A page of a new browser context signed in as ``user`` (the session of a real login)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=PHONE if phone else DESKTOP, locale="en-US", accept_downloads=True)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": platform}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def shots(page, name: str, *, phone: bool = True) -> None:
    """Full-page screenshots of what the page shows now, at desktop size and (``phone``) at phone size."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    if phone:
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)
