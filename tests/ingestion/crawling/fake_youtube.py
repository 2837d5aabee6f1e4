"""A loopback server that speaks YouTube's wire formats, for the transcript tests.

It answers what ``ingestion.crawling.youtube`` asks of www.youtube.com: the watch page (with the InnerTube key
in its ``ytcfg`` script; optionally a cookie-consent page first, or a captcha page), the InnerTube
player API (``POST /youtubei/v1/player?key=…`` with the ANDROID client context: playability, video
details, caption tracks whose ``baseUrl`` carries ``&fmt=srv3`` as YouTube's does) and the timedtext
captions (srv1 XML with YouTube's doubly escaped text; srv3 when ``fmt=srv3`` is left on). Every
request is recorded.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.servers import start_serving

API_KEY = "AIzaSyFakeKeyForTheLoopbackServer0"
CONSENT_VALUE = "cb.20210328-17-p0.en+FX+667"


@dataclass
class Track:
    language_code: str
    name: str
    cues: list[tuple[float, str]]  # (start, text); text as spoken, escaped by the server
    generated: bool = False
    base_url: str = ""  # "" = this server's timedtext address
    raw: bytes | None = None  # served instead of the cues' XML


@dataclass
class Video:
    title: str = "How the Lisbon shop works"
    author: str = "Example Shop"
    status: str = "OK"  # playabilityStatus.status
    reason: str = ""
    tracks: list[Track] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeYouTube:
    def __init__(
        self, videos: dict[str, Video], *, consent: bool = False, captcha: bool = False, refuse_status: int = 0
    ):
        self.videos, self.consent, self.captcha, self.refuse_status = videos, consent, captcha, refuse_status
        self.requests: list[Request] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeYouTube:
        start_serving(self.server)
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, prefix: str) -> list[Request]:
        return [request for request in self.requests if request.path.startswith(prefix)]

    # --- what each address answers -----------------------------------------------------------
    def watch_page(self, request: Request) -> tuple[int, str, bytes]:
        if self.captcha:
            page = '<html><body><form><div class="g-recaptcha" data-sitekey="x"></div></form></body></html>'
            return 200, "text/html; charset=utf-8", page.encode()
        if self.consent and f"CONSENT=YES+{CONSENT_VALUE}" not in request.headers.get("cookie", ""):
            page = (
                '<html><body><form action="https://consent.youtube.com/s" method="POST">'
                f'<input type="hidden" name="v" value="{CONSENT_VALUE}"><button>Accept all</button></form></body></html>'
            )
            return 200, "text/html; charset=utf-8", page.encode()
        config = json.dumps({"INNERTUBE_API_KEY": API_KEY, "INNERTUBE_CLIENT_NAME": "WEB"})
        page = f"<!DOCTYPE html><html><head><script>ytcfg.set({config});</script></head><body></body></html>"
        return 200, "text/html; charset=utf-8", page.encode()

    def player(self, request: Request, query: dict) -> tuple[int, str, bytes]:
        if query.get("key") != [API_KEY]:
            return 400, "application/json", b'{"error": {"code": 400, "message": "API key not valid."}}'
        body = json.loads(request.body or b"{}")
        if body.get("context", {}).get("client", {}).get("clientName") != "ANDROID":
            return 400, "application/json", b'{"error": {"code": 400, "message": "Precondition check failed."}}'
        video = self.videos.get(body.get("videoId", ""))
        if video is None:
            answer = {"playabilityStatus": {"status": "ERROR", "reason": "This video is unavailable"}}
            return 200, "application/json", json.dumps(answer).encode()
        answer: dict = {
            "responseContext": {"visitorData": "Cgt4eHh4eHh4eHh4eA%3D%3D"},
            "playabilityStatus": {"status": video.status, **({"reason": video.reason} if video.reason else {})},
        }
        if video.status == "OK":
            answer["videoDetails"] = {
                "videoId": body["videoId"],
                "title": video.title,
                "author": video.author,
                "lengthSeconds": "300",
            }
            tracks = [
                {
                    "baseUrl": track.base_url
                    or (
                        f"{self.base_url}/api/timedtext?v={body['videoId']}&caps=asr&opi=112496729&xoaf=5"
                        f"&hl=en&sparams=ip%2Cipbits&signature=ABC&key=yt8&lang={track.language_code}"
                        + ("&kind=asr" if track.generated else "")
                        + "&fmt=srv3"
                    ),
                    "name": {"runs": [{"text": track.name}]},
                    "vssId": ("a." if track.generated else ".") + track.language_code,
                    "languageCode": track.language_code,
                    **({"kind": "asr"} if track.generated else {}),
                    "isTranslatable": True,
                }
                for track in video.tracks
            ]
            if tracks:
                answer["captions"] = {"playerCaptionsTracklistRenderer": {"captionTracks": tracks}}
        return 200, "application/json", json.dumps(answer).encode()

    def captions(self, query: dict) -> tuple[int, str, bytes]:
        video = self.videos.get((query.get("v") or [""])[0])
        language, generated = (query.get("lang") or [""])[0], query.get("kind") == ["asr"]
        track = next(
            (t for t in (video.tracks if video else []) if t.language_code == language and t.generated == generated),
            None,
        )
        if track is None:
            return 404, "text/html", b""
        if track.raw is not None:
            return 200, "text/xml; charset=UTF-8", track.raw
        if query.get("fmt") == ["srv3"]:  # YouTube's newer format, which has no <text> elements
            paragraphs = "".join(
                f'<p t="{int(start * 1000)}" d="2000">{html.escape(text)}</p>' for start, text in track.cues
            )
            return (
                200,
                "text/xml; charset=UTF-8",
                f'<timedtext format="3"><body>{paragraphs}</body></timedtext>'.encode(),
            )
        # srv1: the text is HTML-escaped, then escaped again as XML (YouTube's "&amp;#39;").
        texts = "".join(
            f'<text start="{start}" dur="2.5">{html.escape(html.escape(text))}</text>' for start, text in track.cues
        )
        return (
            200,
            "text/xml; charset=UTF-8",
            f'<?xml version="1.0" encoding="utf-8" ?><transcript>{texts}</transcript>'.encode(),
        )

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    method,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                fake.requests.append(request)
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if fake.refuse_status:
                    status, kind, body = fake.refuse_status, "text/html", b"Too many requests"
                elif method == "GET" and parts.path == "/watch":
                    status, kind, body = fake.watch_page(request)
                elif method == "POST" and parts.path == "/youtubei/v1/player":
                    status, kind, body = fake.player(request, query)
                elif method == "GET" and parts.path == "/api/timedtext":
                    status, kind, body = fake.captions(query)
                else:
                    status, kind, body = 404, "text/html", b"not found"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        return Handler
