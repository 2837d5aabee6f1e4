"""YouTube transcripts: a video added by its address is indexed from its captions, with timestamps.

A team pastes a video's address (``youtube.com/watch?v=…``, ``youtu.be/…``, ``/shorts/…``,
``/embed/…``, ``/live/…``) where documents are added by URL. The worker then fetches, every request
through the one SSRF-safe client (:mod:`chatsite.lib.http`), the way YouTube's own Android app does:

1. the watch page ``/watch?v=ID`` for the InnerTube key (a consent page, served in some regions,
   is answered with its ``CONSENT`` cookie once; a captcha means YouTube is refusing this server);
2. ``POST /youtubei/v1/player?key=KEY`` with the ANDROID client context, whose JSON says whether
   the video plays (``playabilityStatus``), its title and channel (``videoDetails``) and its caption
   tracks (``captions.playerCaptionsTracklistRenderer.captionTracks``: ``baseUrl``,
   ``languageCode``, ``name``, ``kind: "asr"`` for automatic captions);
3. the chosen track's ``baseUrl`` (timedtext XML: ``<text start="1.2" dur="3.4">…</text>``).

The track is the assistant's language (when it has one), then English, then any other, a track
written by people before automatic captions. The cues become a WebVTT file that the parser sandbox
reads like an uploaded subtitle file, so chunks keep their start times (``t=SECONDS``) and a
citation opens the video at that moment (``watch?v=ID&t=SECONDS``, :func:`moment_link`).

Every failure is a :class:`~ingestion.parsers.ParseError` (as for any document that cannot be read)
whose reason fails that one document: the video is
private, removed or age-restricted, it has no captions, YouTube refuses the server (captcha, 429,
proof-of-origin token), or an answer is not what YouTube sends. ``YOUTUBE_BASE_URL`` (default
``https://www.youtube.com``) is where the requests go; the tests point it at a loopback server that
speaks these exact formats. The document's own address stays ``https://www.youtube.com/watch?v=ID``.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

from django.conf import settings

from chatsite.lib import http
from ingestion.parsers.text import one_line
from ingestion.parsers.types import ParseError

WATCH_URL = "https://www.youtube.com/watch?v={video_id}"  # a video document's address (its citations)
# The client YouTube's transcript tools use: its answers carry caption URLs that need no signature.
INNERTUBE_CONTEXT = {"client": {"clientName": "ANDROID", "clientVersion": "20.10.38"}}
PAGE_MAX_BYTES = 8 * 1024 * 1024  # a watch page is ~1-2 MB
CAPTIONS_MAX_BYTES = 5 * 1024 * 1024

_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_HOSTS = {
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
}
_PATH_PREFIXES = ("/embed/", "/shorts/", "/live/", "/v/", "/e/")
_API_KEY = re.compile(r'"INNERTUBE_API_KEY":\s*"([A-Za-z0-9_-]+)"')
_CONSENT_FORM = 'action="https://consent.youtube.com/s"'
_CONSENT_VALUE = re.compile(r'name="v" value="(.*?)"')
_TAG = re.compile(r"<[^>]*>")


@dataclass
class Transcript:
    title: str
    language_code: str
    language: str  # the track's name, e.g. "English (auto-generated)"
    generated: bool  # YouTube's automatic captions
    cues: list[tuple[float, str]] = field(default_factory=list)  # (start in seconds, text)

    def webvtt(self) -> str:
        """The cues as a WebVTT file (what the subtitles parser reads)."""
        lines = [f"WEBVTT - {one_line(self.title)}", ""]
        for index, (start, text) in enumerate(self.cues):
            end = self.cues[index + 1][0] if index + 1 < len(self.cues) else start + 5
            lines += [f"{_stamp(start)} --> {_stamp(max(end, start))}", text.replace("-->", "->"), ""]
        return "\n".join(lines)

    @property
    def notes(self) -> list[str]:
        """What the team should know about the text (shown on the document)."""
        kind = "YouTube's automatic captions" if self.generated else "captions"
        return [f"transcript from {kind} in {self.language or self.language_code}"]


def video_id(url: str) -> str | None:
    """The 11-character id of a YouTube video address, or None for any other address."""
    try:
        parts = urlsplit((url or "").strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        return None
    candidate = ""
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif host in _HOSTS:
        if parts.path.rstrip("/") == "/watch":
            candidate = (parse_qs(parts.query).get("v") or [""])[0]
        elif parts.path.startswith(_PATH_PREFIXES):
            candidate = parts.path.split("/")[2]
    return candidate if _ID.match(candidate) else None


def moment_link(url: str, anchor: str) -> str | None:
    """``watch?v=ID&t=90s`` for a video document's ``t=90`` anchor; None when not a YouTube video."""
    found = video_id(url) if anchor.startswith("t=") else None
    return f"{WATCH_URL.format(video_id=found)}&t={anchor[2:]}s" if found else None


def fetch_transcript(video: str, *, languages: tuple[str, ...] = ()) -> Transcript:
    """The captions of a video, in the first of ``languages`` it has (else English, else any)."""
    base = settings.YOUTUBE_BASE_URL
    key = _api_key(video, base)
    player = _player(video, base, key)
    details = player.get("videoDetails") if isinstance(player.get("videoDetails"), dict) else {}
    track = _choose_track(_tracks(player), languages)
    if "&exp=xpe" in track["url"]:
        raise ParseError("YouTube asks for a proof-of-origin token for this video's captions")
    address = urljoin(f"{base}/", track["url"].replace("&fmt=srv3", ""))  # srv1 XML; relative on some pages
    cues = _cues(_get(address, CAPTIONS_MAX_BYTES, "the captions").content)
    if not cues:
        raise ParseError("the video's captions hold no text")
    return Transcript(
        title=_text(details.get("title")) or f"YouTube video {video}",
        language_code=track["language_code"],
        language=track["name"],
        generated=track["generated"],
        cues=cues,
    )


def _api_key(video: str, base: str) -> str:
    headers = {"Accept-Language": "en-US"}
    page = _get(f"{base}/watch?v={video}", PAGE_MAX_BYTES, "the video's page", headers).text
    if _CONSENT_FORM in page:  # a cookie-consent page first (EU): accept it once
        value = _CONSENT_VALUE.search(page)
        if value is None:
            raise ParseError("YouTube's cookie consent page could not be answered")
        headers["Cookie"] = f"CONSENT=YES+{value.group(1)}"
        page = _get(f"{base}/watch?v={video}", PAGE_MAX_BYTES, "the video's page", headers).text
        if _CONSENT_FORM in page:
            raise ParseError("YouTube's cookie consent page could not be answered")
    match = _API_KEY.search(html.unescape(page))
    if match:
        return match.group(1)
    if 'class="g-recaptcha"' in page:
        raise ParseError("YouTube is refusing requests from this server (a captcha); try again later")
    raise ParseError("the video's page could not be read (it names no player key)")


def _player(video: str, base: str, key: str) -> dict:
    response = _get(
        f"{base}/youtubei/v1/player?key={key}",
        PAGE_MAX_BYTES,
        "YouTube's player API",
        method="POST",
        json={"context": INNERTUBE_CONTEXT, "videoId": video},
    )
    try:
        player = json.loads(response.content)
    except ValueError:
        raise ParseError("YouTube's player API did not answer in JSON") from None
    if not isinstance(player, dict):
        raise ParseError("YouTube's player API did not answer in JSON")
    playability = player.get("playabilityStatus") if isinstance(player.get("playabilityStatus"), dict) else {}
    status, reason = playability.get("status") or "OK", _text(playability.get("reason"))
    if status == "OK":
        return player
    said = f" (YouTube says: {reason})" if reason else ""
    if status == "LOGIN_REQUIRED" and "bot" in reason.lower():
        raise ParseError(f"YouTube is refusing requests from this server{said}; try again later")
    if status == "LOGIN_REQUIRED":
        raise ParseError(f"the video needs a signed-in viewer: private or age-restricted{said}")
    if status == "ERROR":
        raise ParseError(f"the video is unavailable{said}")
    raise ParseError(f"the video cannot be played from here{said}")


def _tracks(player: dict) -> list[dict]:
    captions = player.get("captions")
    renderer = captions.get("playerCaptionsTracklistRenderer") if isinstance(captions, dict) else None
    tracks = renderer.get("captionTracks") if isinstance(renderer, dict) else None
    usable = []
    for track in tracks if isinstance(tracks, list) else []:
        if isinstance(track, dict) and isinstance(track.get("baseUrl"), str) and track.get("languageCode"):
            code = str(track["languageCode"])
            usable.append(
                {
                    "url": track["baseUrl"],
                    "language_code": code,
                    "name": _text(track.get("name")) or code,
                    "generated": track.get("kind") == "asr",
                }
            )
    if not usable:
        raise ParseError("the video has no captions (none were made, or they are turned off)")
    return usable


def _choose_track(tracks: list[dict], languages: tuple[str, ...]) -> dict:
    """People's captions before automatic ones, in the first language that has either."""
    wanted = [code.lower() for code in (*languages, "en") if code]
    for code in wanted:
        matching = [
            t
            for t in tracks
            if t["language_code"].lower() == code or t["language_code"].lower().split("-")[0] == code.split("-")[0]
        ]
        if matching:
            return min(matching, key=lambda t: t["generated"])
    return min(tracks, key=lambda t: t["generated"])


def _cues(data: bytes) -> list[tuple[float, str]]:
    """(start, text) of the timedtext XML's ``<text>`` elements (entities and tags removed)."""
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise ParseError("the captions are not in YouTube's format (they declare entities)")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise ParseError("the captions are not in YouTube's format (not XML)") from None
    cues = []
    for element in root.iter("text"):
        try:
            start = float(element.get("start", ""))
        except ValueError:
            continue
        spoken = " ".join(_TAG.sub("", html.unescape("".join(element.itertext()))).split())
        if spoken:
            cues.append((start, spoken))
    return sorted(cues, key=lambda cue: cue[0])


def _get(url: str, max_bytes: int, what: str, headers: dict | None = None, **request) -> http.FetchResult:
    try:
        result = http.fetch_or_fail(url, subject=what, headers=headers, max_bytes=max_bytes, **request)
    except http.FetchFailed as exc:
        raise ParseError(exc.reason) from exc
    if result.status_code == 429:
        raise ParseError("YouTube is refusing requests from this server (HTTP 429); try again later")
    if result.status_code != 200:
        raise ParseError(f"YouTube answered HTTP {result.status_code} for {what}")
    return result


def _text(value) -> str:
    """A plain string, or the text of YouTube's ``{"simpleText": …}`` / ``{"runs": [{"text": …}]}``."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        if isinstance(value.get("simpleText"), str):
            return value["simpleText"].strip()
        runs = value.get("runs")
        if isinstance(runs, list):
            return "".join(run.get("text", "") for run in runs if isinstance(run, dict)).strip()
    return ""


def _stamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"
