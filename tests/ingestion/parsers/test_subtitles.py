"""Subtitles: WebVTT and SubRip cues become minute-long sections anchored at their start time."""

import pytest

from ingestion.parsers import ParseError, parse_file

VTT = """WEBVTT
Kind: captions

NOTE a comment block

intro
00:00:01.000 --> 00:00:04.000 align:start position:10%
<v Ana>Welcome to the <b>billing</b> tour.</v>

00:00:04.000 --> 00:00:07.500
Welcome to the billing tour.

00:00:30.000 --> 00:00:33.000
Invoices are sent on the first day of each month.

01:05.000 --> 01:09.000
To change your card, open Settings, then Payment.

01:01:02.250 --> 01:01:05.000
Thanks for watching.
"""

SRT = """1
00:00:00,500 --> 00:00:02,000
Refunds take five business days.

2
00:02:10,000 --> 00:02:12,000
Contact support for <i>urgent</i> cases.
"""


def parse(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return parse_file(path, filename=name)


def test_vtt_sections_start_a_minute_apart_with_time_anchors(tmp_path):
    document = parse(tmp_path, "billing-tour.vtt", VTT)
    assert document.title == "billing-tour"
    assert [(s.anchor, s.heading_path) for s in document.sections] == [
        ("t=1", ["billing-tour", "0:00:01"]),
        ("t=65", ["billing-tour", "0:01:05"]),
        ("t=3662", ["billing-tour", "1:01:02"]),
    ]
    first = document.sections[0].text
    # tags and cue settings gone; the rolling-caption repeat kept once
    assert first == "Welcome to the billing tour. Invoices are sent on the first day of each month."
    assert "Settings, then Payment" in document.sections[1].text


@pytest.mark.parametrize(
    "header, title",
    [
        ("WEBVTT - The billing tour", "The billing tour"),
        ("WEBVTT\tBilling, explained", "Billing, explained"),
        ("WEBVTT", "billing-tour"),
        ("WEBVTT -", "billing-tour"),
    ],
)
def test_the_text_after_webvtt_on_the_first_line_is_the_title(tmp_path, header, title):
    document = parse(tmp_path, "billing-tour.vtt", VTT.replace("WEBVTT", header, 1))
    assert document.title == title and document.sections[0].heading_path == [title, "0:00:01"]


def test_srt_is_read_the_same_way(tmp_path):
    document = parse(tmp_path, "refunds.srt", SRT)
    assert [(s.anchor, s.text) for s in document.sections] == [
        ("t=0", "Refunds take five business days."),
        ("t=130", "Contact support for urgent cases."),
    ]


def test_a_vtt_named_txt_is_still_subtitles(tmp_path):
    document = parse(tmp_path, "captions.txt", VTT)
    assert document.sections[0].anchor == "t=1"


def test_a_subtitle_file_without_cues_fails_with_a_reason(tmp_path):
    with pytest.raises(ParseError, match="no subtitle cues"):
        parse(tmp_path, "empty.srt", "just some words\n")
