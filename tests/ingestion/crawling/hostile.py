"""A hostile page for the JavaScript renderer, and sentinels that count every connection it gets out.

Each way a page can make Chromium open a connection (popups, frames, form posts, navigations,
beacons, prefetches, workers, WebSockets, WebRTC, WebTransport, ...) is a *vector*, aimed at a
sentinel of its own, so a connection names the vector that leaked. The page runs every vector after
"load" and writes ``<li data-vector="name">fired</li>`` (or ``threw: ...``) as each one ran, so a test
can tell a vector that was stopped from one that never ran.

Used by test_rendering_isolation.py on loopback, and by netns_probe.py inside a network namespace
with internal addresses.
"""

from __future__ import annotations

import json
import socket
import threading

# name → (sentinel kind, script). TARGET is the sentinel: "http://host:port" for "http",
# "ws://host:port" for "ws", "host:port" for "tcp" and "udp". A script calls done() when it has
# run (workers call it when the worker reports back).
VECTORS: dict[str, tuple[str, str]] = {
    "popup": ("http", 'window.open("TARGET/latest/meta-data/"); done();'),
    "popup_noopener": ("http", 'window.open("TARGET/popup", "_blank", "noopener"); done();'),
    "popup_written": (
        "http",
        'var w = window.open("");'
        ' w.document.write(\'<img src="TARGET/popup-img"><script>fetch("TARGET/popup-fetch")<\\/script>\');'
        " done();",
    ),
    "link_blank": ("http", 'click({href: "TARGET/link", target: "_blank"}); done();'),
    "link_ping": ("http", 'click({href: "#pinged", ping: "TARGET/ping"}); done();'),
    "download": ("http", 'click({href: "TARGET/download.bin", download: "download.bin"}); done();'),
    "form_blank": ("http", 'post("TARGET/form-blank", "_blank"); done();'),
    "iframe": ("http", 'add("iframe", {src: "TARGET/iframe"}); done();'),
    "iframe_refresh": (
        "http",
        'add("iframe", {srcdoc: \'<meta http-equiv="refresh" content="0;url=TARGET/iframe-refresh">\'}); done();',
    ),
    "object": ("http", 'add("object", {data: "TARGET/object"}); done();'),
    # The three navigations of the page itself run one after the other (see the page's script).
    "form_post": ("http", 'post("TARGET/form", ""); done();'),
    "location": ("http", 'location.href = "TARGET/location"; done();'),
    "meta_refresh": ("http", 'add("meta", {httpEquiv: "refresh", content: "0;url=TARGET/meta"}, "head"); done();'),
    "image": ("http", 'new Image().src = "TARGET/image"; done();'),
    "stylesheet": ("http", 'add("link", {rel: "stylesheet", href: "TARGET/style.css"}, "head"); done();'),
    "prefetch": ("http", 'add("link", {rel: "prefetch", href: "TARGET/prefetch"}, "head"); done();'),
    "preconnect": ("http", 'add("link", {rel: "preconnect", href: "TARGET/"}, "head"); done();'),
    "beacon": ("http", 'navigator.sendBeacon("TARGET/beacon", "data"); done();'),
    "eventsource": ("http", 'new EventSource("TARGET/events"); done();'),
    "fetch": ("http", 'fetch("TARGET/fetch", {mode: "no-cors"}).catch(() => {}); done();'),
    "worker_fetch": ("http", "worker('fetch(\"TARGET/worker\").catch(() => {}); postMessage(1);', done);"),
    "shared_worker_fetch": (
        "http",
        "sharedWorker('onconnect = e => { fetch(\"TARGET/shared\").catch(() => {}); e.ports[0].postMessage(1); };',"
        " done);",
    ),
    # /sw.js, on the page's own site, fetches TARGET/service-worker as it starts.
    "service_worker": ("http", 'navigator.serviceWorker.register("/sw.js").catch(() => {}); done();'),
    "speculation_prefetch": ("http", 'speculate("prefetch", "TARGET/speculative-prefetch"); done();'),
    "speculation_prerender": ("http", 'speculate("prerender", "TARGET/speculative-prerender"); done();'),
    "websocket": ("ws", 'new WebSocket("TARGET/ws"); done();'),
    "worker_websocket": ("ws", "worker('new WebSocket(\"TARGET/ws\"); postMessage(1);', done);"),
    "frame_websocket": (
        "ws",
        'var f = add("iframe", {}); new f.contentWindow.WebSocket("TARGET/ws"); done();',
    ),
    "webrtc_turn_tcp": ("tcp", 'rtc({urls: "turn:TARGET?transport=tcp", username: "u", credential: "p"}); done();'),
    "webrtc_stun_udp": ("udp", 'rtc({urls: "stun:TARGET"}); done();'),
    "webtransport": (
        "udp",
        'var t = new WebTransport("https://TARGET/wt"); t.ready.catch(() => {}); t.closed.catch(() => {}); done();',
    ),
}
# Vectors run after "load", but these while the page is parsed (Chromium acts on speculation rules
# some time after it reads them); the page's own navigations, each of which replaces the previous
# one, 200 ms apart.
EARLY = ["speculation_prefetch", "speculation_prerender"]
SEQUENTIAL = ["form_post", "location", "meta_refresh"]

# Aimed at a sentinel on the allow-list (OUTBOUND_ALLOWED_HOSTS): the safe client would fetch from
# it, but none of these may reach it, because they are popups, frames, non-GET requests or sockets.
# Only "fetch_get" may, as one GET made by the safe client.
ALLOWED_VECTORS: dict[str, str] = {
    "allowed_popup": 'window.open("TARGET/popup"); done();',
    "allowed_popup_written": (
        'var w = window.open(""); w.document.write(\'<script>fetch("TARGET/popup-fetch")<\\/script>\'); done();'
    ),
    "allowed_iframe": 'add("iframe", {src: "TARGET/iframe"}); done();',
    "allowed_form_blank": 'post("TARGET/form-blank", "_blank"); done();',
    "allowed_beacon": 'navigator.sendBeacon("TARGET/beacon", "data"); done();',
    "allowed_fetch_post": 'fetch("TARGET/fetch-post", {method: "POST", body: "x", mode: "no-cors"}).catch(() => {}); done();',
    "allowed_image": 'new Image().src = "TARGET/image"; done();',
    "allowed_websocket": 'new WebSocket("TARGET/ws".replace("http:", "ws:")); done();',
    "allowed_fetch_get": 'fetch("TARGET/fetch-get", {mode: "no-cors"}).catch(() => {}); done();',
}
ALLOWED_GET = "GET /fetch-get"

HELPERS = r"""
function report(name, text) {
  var li = document.createElement("li"); li.dataset.vector = name; li.textContent = text;
  document.getElementById("vectors").appendChild(li);
}
function add(tag, props, where) {
  var el = document.createElement(tag); Object.assign(el, props);
  document[where || "body"].appendChild(el); return el;
}
function click(props) { add("a", props).click(); }
function post(action, target) {
  var f = add("form", {method: "post", action: action, target: target});
  f.appendChild(Object.assign(document.createElement("input"), {name: "secret", value: "s"})); f.submit();
}
function blobURL(source) { return URL.createObjectURL(new Blob([source], {type: "text/javascript"})); }
function worker(source, done) { new Worker(blobURL(source)).onmessage = done; }
function sharedWorker(source, done) { var w = new SharedWorker(blobURL(source)); w.port.onmessage = done; w.port.start(); }
function speculate(kind, url) {
  var rules = {}; rules[kind] = [{source: "list", urls: [url]}];
  add("script", {type: "speculationrules", textContent: JSON.stringify(rules)}, "head");
}
function rtc(server) {
  var pc = new RTCPeerConnection({iceServers: [server]}); pc.createDataChannel("x");
  pc.createOffer().then(o => pc.setLocalDescription(o));
}
var VECTORS = [];
function run(name, body) {
  try { body(function () { report(name, "fired"); }); } catch (e) { report(name, "threw: " + e); }
}
"""

RUNNER = r"""
VECTORS.forEach(function (v) { if (EARLY.indexOf(v[0]) >= 0) run(v[0], v[1]); });
window.addEventListener("load", function () {
  VECTORS.forEach(function (v) { if (EARLY.indexOf(v[0]) < 0 && SEQUENTIAL.indexOf(v[0]) < 0) run(v[0], v[1]); });
  SEQUENTIAL.forEach(function (name, i) {
    var v = VECTORS.find(function (v) { return v[0] === name; });
    if (v) setTimeout(function () { run(v[0], v[1]); }, 200 * (i + 1));
  });
});
"""

APP = """fetch("/api/text.json").then(r => r.json()).then(d => {
  var p = document.createElement("p"); p.id = "text"; p.textContent = d.text;
  document.getElementById("app").replaceWith(p);
});"""
TEXT = "The hostile page was rendered and its own data came through the safe client. " * 3


def hostile_site_pages(targets: dict[str, str], allowed: str | None = None) -> dict[str, tuple[int, str, str]]:
    """The site's pages for ``Site``: "/" is the hostile page, aimed at ``targets`` (vector → target
    as VECTORS describes it); ``allowed``, the allow-listed sentinel's "http://host:port", adds ALLOWED_VECTORS.
    """
    scripts = [HELPERS, f"var EARLY = {json.dumps(EARLY)}, SEQUENTIAL = {json.dumps(SEQUENTIAL)};"]
    chosen = {name: VECTORS[name][1].replace("TARGET", target) for name, target in targets.items()}
    if allowed:
        chosen |= {name: script.replace("TARGET", allowed) for name, script in ALLOWED_VECTORS.items()}
    for name, script in chosen.items():
        # One <script> each: a vector the browser cannot parse fails alone.
        scripts.append(f"VECTORS.push([{json.dumps(name)}, function (done) {{ {script} }}]);")
    scripts.append(RUNNER)
    body = "".join(f"<script>{script}</script>" for script in scripts)
    html = (
        '<html><head><title>Hostile</title><script src="/app.js"></script></head>'
        f'<body><div id="app">Loading</div><ul id="vectors"></ul>{body}</body></html>'
    )
    worker = f'fetch("{targets.get("service_worker", "")}/service-worker").catch(() => {{}});'
    return {
        "/": (200, "text/html", html),
        "/app.js": (200, "application/javascript", APP),
        "/sw.js": (200, "application/javascript", worker),
        "/api/text.json": (200, "application/json", json.dumps({"text": TEXT})),
    }


def vector_reports(html: str) -> dict[str, str]:
    """vector → "fired" / "threw: ..." from the rendered DOM."""
    from lxml import html as lxml_html

    tree = lxml_html.fromstring(html)
    return {li.get("data-vector"): li.text_content() for li in tree.xpath('//ul[@id="vectors"]/li')}


class Sentinel:
    """A listener that records every connection (TCP: the first line sent; UDP: each datagram).

    TCP connections get an HTTP 200 answer, so a browser that got through would have loaded something.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, kind: str = "http"):
        self.kind = kind
        self.hits: list[str] = []  # per connection (or datagram): the first line, or what it was
        self.heads: list[str] = []  # per TCP connection: everything the first read got
        udp = kind == "udp"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        if not udp:
            self.sock.listen(64)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_udp if udp else self._serve_tcp, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def target(self) -> str:
        """What a vector of this sentinel's kind is aimed at."""
        return {"http": f"http://{self.address}", "ws": f"ws://{self.address}"}.get(self.kind, self.address)

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.settimeout(1)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            self.heads.append(data.decode("latin-1"))
            self.hits.append(data.split(b"\r\n", 1)[0].decode("latin-1") or "(connected, sent nothing)")
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 7\r\n\r\nreached")
            except OSError:
                pass

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.hits.append(f"datagram of {len(data)} bytes")

    def close(self):
        close_all([self])


def close_all(sentinels) -> None:
    for sentinel in sentinels:
        sentinel._stop.set()
    for sentinel in sentinels:
        sentinel._thread.join(timeout=2)
        sentinel.sock.close()
