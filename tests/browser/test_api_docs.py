"""The API's reference page, /api/v1/docs, in headless Chromium: drawn under its strict
Content-Security-Policy from our own files alone, with every operation of openapi.json — its path, an
example request and an example response —, how to authenticate, and a menu that takes a person to any
operation; nothing logged to the console, nothing fetched from another origin."""

import json
import urllib.request

from playwright.sync_api import expect

from tests.browser.helpers import ARTIFACTS


def test_the_reference_shows_every_operation_under_its_csp(platform, page):
    logged, elsewhere = [], []
    page.on("console", lambda message: logged.append(f"{message.type}: {message.text}"))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((f"{platform}/", f"blob:{platform}/")) else elsewhere.append(request.url)
        ),
    )
    response = page.goto(f"{platform}/api/v1/docs")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    with urllib.request.urlopen(f"{platform}/api/v1/openapi.json") as served:
        document = json.load(served)

    authentication = page.locator('[id="section/Authentication"]')
    expect(authentication).to_contain_text("Authorization: Bearer cs_<prefix>_<secret>")
    expect(authentication).to_contain_text("API keys")
    operations = [(method, path, item[method]) for path, item in document["paths"].items() for method in item]
    assert len(operations) > 20
    for method, path, operation in operations:
        section = page.locator(f'[id="operation/{operation["operationId"]}"]')
        expect(section).to_contain_text(operation["summary"])
        expect(section).to_contain_text(path)
        expect(section).to_contain_text("Request samples")
        expect(section).to_contain_text(f"curl -X {method.upper()}")  # the example request, shown first
        expect(section).to_contain_text("Response samples")

    # The menu leads to an operation: its tag opens, the operation scrolls into view, the address names it.
    menu = page.locator(".menu-content")
    menu.get_by_text("Chat", exact=True).click()
    menu.get_by_text("Ask a question", exact=True).click()
    expect(page.locator('[id="operation/AskAQuestion"]')).to_be_in_viewport()
    assert page.url.endswith("#tag/Chat/operation/AskAQuestion")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"))

    assert not page.errors, page.errors
    assert not logged, logged
    assert not elsewhere, elsewhere
