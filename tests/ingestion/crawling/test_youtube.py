"""YouTube videos added by their address: the worker fetches the transcript through the SSRF-safe
client from a loopback server that speaks YouTube's formats (watch page, InnerTube player API,
timedtext captions); chunks keep their start times and citations open the video at that moment;
every way a video can fail fails that document alone, with its reason."""

import json

import pytest
from django.test import Client

from ingestion import services
from ingestion.crawling import youtube
from ingestion.embedding import get_embedder
from ingestion.models import Document
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import space_active
from ingestion.tasks import document_prepare_task
from tests.factories import make_assistant, make_team, make_user
from tests.ingestion.crawling.fake_youtube import CONSENT_VALUE, FakeYouTube, Track, Video

pytestmark = pytest.mark.django_db

VIDEO, OTHER = "Lx3fO_jd8Z4", "b1-OTHERvid"
LESSON = [
    (0.0, "Welcome to the Lisbon shop."),
    (4.2, "It's open from nine every weekday & closed on Sundays."),
    (31.0, "Parking is behind the building."),
    (65.5, "Returns are accepted for thirty days with the receipt."),
    (80.0, "Gift cards never expire."),
]


def english(generated: bool = False, cues=LESSON) -> Track:
    return Track("en", "English (auto-generated)" if generated else "English", cues, generated=generated)


@pytest.fixture
def fake(settings, eager_tasks):
    """The loopback YouTube, reachable as the only private host the outbound client allows."""
    with FakeYouTube({VIDEO: Video(tracks=[english(generated=True)])}) as server:
        settings.YOUTUBE_BASE_URL = server.base_url
        settings.OUTBOUND_ALLOW_PRIVATE = False
        settings.OUTBOUND_ALLOWED_HOSTS = [server.host]
        yield server


def add_and_prepare(assistant, url: str) -> Document:
    document = services.document_add_url(assistant=assistant, url=url)
    document_prepare_task(document.pk)  # its indexing runs at once (eager tasks)
    document.refresh_from_db()
    return document


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"https://www.youtube.com/watch?v={VIDEO}", VIDEO),
        (f"https://youtube.com/watch?feature=share&v={VIDEO}&t=42s", VIDEO),
        (f"https://youtu.be/{VIDEO}?si=abc", VIDEO),
        (f"https://m.youtube.com/shorts/{VIDEO}", VIDEO),
        (f"https://www.youtube-nocookie.com/embed/{VIDEO}?start=3", VIDEO),
        (f"https://www.youtube.com/live/{VIDEO}", VIDEO),
        ("https://www.youtube.com/watch?v=tooshort", None),
        ("https://www.youtube.com/@somechannel", None),
        (f"https://example.com/watch?v={VIDEO}", None),
        (f"https://youtube.com.evil.example/watch?v={VIDEO}", None),
        (f"ftp://youtu.be/{VIDEO}", None),
    ],
)
def test_video_addresses_are_recognised_in_every_form_youtube_shares(url, expected):
    assert youtube.video_id(url) == expected


def test_a_video_is_indexed_from_its_captions_and_cited_at_the_moment_it_quotes(fake):
    assistant = make_assistant()
    document = add_and_prepare(assistant, f"https://youtu.be/{VIDEO}?si=shared")

    assert document.status == "ready", document.error
    assert document.url == f"https://www.youtube.com/watch?v={VIDEO}" and document.title == "How the Lisbon shop works"
    assert document.warnings == ["transcript from YouTube's automatic captions in English (auto-generated)"]
    anchors = [section["anchor"] for section in document.sections]
    assert anchors == ["t=0", "t=65"]  # a section per minute, each at its first cue
    assert document.sections[0]["heading_path"] == ["How the Lisbon shop works", "0:00:00"]
    assert "It's open from nine every weekday & closed on Sundays." in document.sections[0]["text"]

    # The three requests, in YouTube's formats, and nothing else.
    watch, player, captions = fake.requests
    assert (watch.method, watch.path) == ("GET", f"/watch?v={VIDEO}")
    assert player.method == "POST" and player.path.startswith("/youtubei/v1/player?key=AIza")
    assert json.loads(player.body) == {"context": youtube.INNERTUBE_CONTEXT, "videoId": VIDEO}
    assert captions.path.startswith(f"/api/timedtext?v={VIDEO}") and "fmt=srv3" not in captions.path

    space = space_active(assistant.pk)
    question = "How many days do I have to return something?"
    hits = chunk_search(
        space=space, query=question, vector=get_embedder(space.model_name).embed_queries([question])[0], k=1
    )
    assert hits[0].document_id == document.pk
    assert hits[0].link == f"https://www.youtube.com/watch?v={VIDEO}&t=65s"


def test_the_same_video_by_another_address_is_the_same_document(fake):
    assistant = make_assistant()
    first = add_and_prepare(assistant, f"https://www.youtube.com/watch?v={VIDEO}")
    second = add_and_prepare(assistant, f"https://m.youtube.com/shorts/{VIDEO}")
    assert first.pk == second.pk and Document.objects.filter(source__assistant=assistant).count() == 1


def test_people_s_captions_in_the_assistant_s_language_come_first(fake):
    fake.videos[VIDEO] = Video(
        tracks=[
            english(),
            Track("de", "Deutsch (automatisch erzeugt)", [(0.0, "Automatisch: Willkommen.")], generated=True),
            Track("de-DE", "Deutsch", [(0.0, "Willkommen im Laden in Lissabon.")]),
        ]
    )
    assistant = make_assistant()
    assistant.language = "de"
    assistant.save()
    document = add_and_prepare(assistant, f"https://www.youtube.com/watch?v={VIDEO}")
    assert document.status == "ready", document.error
    assert document.sections[0]["text"] == "Willkommen im Laden in Lissabon."
    assert document.warnings == ["transcript from captions in Deutsch"]

    other = add_and_prepare(make_assistant(), f"https://www.youtube.com/watch?v={VIDEO}")  # no language: English
    assert other.sections[0]["text"].startswith("Welcome to the Lisbon shop.")


def test_a_cookie_consent_page_is_answered_once(fake):
    fake.consent = True
    document = add_and_prepare(make_assistant(), f"https://www.youtube.com/watch?v={VIDEO}")
    assert document.status == "ready", document.error
    first, second = fake.paths("/watch")
    assert "cookie" not in first.headers and second.headers["cookie"] == f"CONSENT=YES+{CONSENT_VALUE}"


@pytest.mark.parametrize(
    "video, server, reason",
    [
        (None, {}, "the video is unavailable (YouTube says: This video is unavailable)"),
        (Video(status="LOGIN_REQUIRED", reason="Sign in to confirm your age"), {}, "private or age-restricted"),
        (Video(status="LOGIN_REQUIRED", reason="Sign in to confirm you're not a bot"), {}, "refusing requests"),
        (
            Video(status="UNPLAYABLE", reason="The uploader has not made this video available in your country"),
            {},
            "cannot be played from here",
        ),
        (Video(tracks=[]), {}, "the video has no captions"),
        (Video(tracks=[english(cues=[])]), {}, "captions hold no text"),
        (Video(tracks=[Track("en", "English", [], raw=b"<html>oops")]), {}, "not in YouTube's format"),
        (
            Video(
                tracks=[
                    Track(
                        "en",
                        "English",
                        [],
                        raw=(
                            b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                            b'<transcript><text start="0">&b;</text></transcript>'
                        ),
                    )
                ]
            ),
            {},
            "declare entities",
        ),
        (Video(tracks=[english()]), {"captcha": True}, "a captcha"),
        (Video(tracks=[english()]), {"refuse_status": 429}, "HTTP 429"),
        (Video(tracks=[english()]), {"refuse_status": 503}, "answered HTTP 503"),
    ],
)
def test_a_video_that_cannot_be_read_fails_alone_with_its_reason(fake, video, server, reason):
    fake.videos = {OTHER: Video(tracks=[english()])}
    if video is not None:
        fake.videos[VIDEO] = video
    assistant = make_assistant()
    for name, value in server.items():
        setattr(fake, name, value)
    broken = add_and_prepare(assistant, f"https://www.youtube.com/watch?v={VIDEO}")
    assert broken.status == "failed" and reason in broken.error and broken.chunk_count == 0

    for name in server:
        setattr(fake, name, False if name == "captcha" else 0)
    fine = add_and_prepare(assistant, f"https://www.youtube.com/watch?v={OTHER}")  # the next one goes on
    assert fine.status == "ready" and fine.chunk_count > 0


def test_a_proof_of_origin_token_demand_is_said(fake):
    track = english()
    track.base_url = f"{fake.base_url}/api/timedtext?v={VIDEO}&lang=en&exp=xpe"
    fake.videos[VIDEO] = Video(tracks=[track])
    document = add_and_prepare(make_assistant(), f"https://www.youtube.com/watch?v={VIDEO}")
    assert document.status == "failed" and "proof-of-origin token" in document.error
    assert fake.paths("/api/timedtext") == []


def test_a_relative_caption_address_is_read_from_youtube(fake):
    track = english()
    track.base_url = f"/api/timedtext?v={VIDEO}&lang=en&fmt=srv3"
    fake.videos[VIDEO] = Video(tracks=[track])
    document = add_and_prepare(make_assistant(), f"https://www.youtube.com/watch?v={VIDEO}")
    assert document.status == "ready", document.error
    assert [request.path for request in fake.paths("/api/timedtext")] == [f"/api/timedtext?v={VIDEO}&lang=en"]


def test_a_caption_address_on_a_private_host_is_never_fetched(fake):
    with FakeYouTube({VIDEO: Video(tracks=[english()])}) as sentinel:  # loopback, not allow-listed
        track = english()
        track.base_url = f"{sentinel.base_url}/api/timedtext?v={VIDEO}&lang=en"
        fake.videos[VIDEO] = Video(tracks=[track])
        document = add_and_prepare(make_assistant(), f"https://www.youtube.com/watch?v={VIDEO}")
        assert document.status == "failed" and "may not be fetched" in document.error
        assert sentinel.requests == []


def test_reindexing_a_video_fetches_its_transcript_anew(fake):
    assistant = make_assistant()
    document = add_and_prepare(assistant, f"https://www.youtube.com/watch?v={VIDEO}")
    assert "Gift cards never expire." in document.sections[-1]["text"]

    fake.videos[VIDEO] = Video(title="The Lisbon shop, updated", tracks=[english(cues=[(0.0, "We now open at ten.")])])
    services.document_reindex(document=document)
    document_prepare_task(document.pk)
    document.refresh_from_db()
    assert document.status == "ready" and document.title == "The Lisbon shop, updated"
    assert [section["text"] for section in document.sections] == ["We now open at ten."]
    assert document.warnings == ["transcript from captions in English"]  # the old note is gone


def test_the_dashboard_adds_a_video_by_its_address():
    owner = make_user()
    assistant = make_assistant(make_team(owner), "Videos")
    client = Client()
    client.force_login(owner)
    page = client.get(f"/assistants/{assistant.pk}/").content.decode()
    assert "YouTube" in page
    response = client.post(f"/assistants/{assistant.pk}/documents/url/", {"url": f"https://youtu.be/{VIDEO}"})
    document = Document.objects.get(source__assistant=assistant)
    assert response.status_code == 302 and document.url == f"https://www.youtube.com/watch?v={VIDEO}"
    assert document.title == f"YouTube video {VIDEO}" and document.status == "pending"
