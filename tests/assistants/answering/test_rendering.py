"""Answers as safe HTML: Markdown in, allow-listed HTML out, whatever the model wrote."""

import pytest

from assistants.answering.rendering import render_answer

CITATIONS = [{"n": 1, "title": "Pricing", "section": "Plans", "url": "https://docs.test/pricing/#plans", "chunk_id": 7}]


def test_markdown_becomes_html_with_citation_links():
    html = render_answer("Plans cost **$10** [1].\n\n- one\n- two", CITATIONS)
    assert "<strong>$10</strong>" in html
    assert "<li>one</li>" in html
    assert (
        '<a href="https://docs.test/pricing/#plans" class="cite" title="Pricing" target="_blank" '
        'rel="noopener noreferrer nofollow">[1]</a>' in html
    )


def test_uncited_and_unknown_markers_stay_text():
    html = render_answer("See [2] and [1]2024.", CITATIONS)
    assert "See [2] and " in html
    assert html.count("<a ") == 1 and "</a>2024" in html


def test_citation_with_a_script_url_is_not_a_link():
    html = render_answer("See [1].", [{"n": 1, "title": "x", "url": "javascript:alert(1)"}])
    assert "<a" not in html and "[1]" in html


@pytest.mark.parametrize(
    "payload",
    [
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<script>alert(1)</script>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.test></iframe>",
    ],
)
def test_raw_html_is_shown_as_text(payload):
    html = render_answer(f"Look: {payload}")
    assert "<" + payload[1:] not in html
    assert "&lt;" in html
    for tag in ("<img", "<svg", "<script", "<math", "<iframe", "<style"):
        assert tag not in html


@pytest.mark.parametrize(
    "markdown", ["[x](javascript:alert(1))", "[x](data:text/html,<script>alert(1)</script>)", "[x](vbscript:msgbox)"]
)
def test_only_web_and_mail_links_survive(markdown):
    assert "href" not in render_answer(markdown)


def test_links_open_in_a_new_tab_without_referrer():
    html = render_answer("[docs](https://docs.test/) or [mail](mailto:team@docs.test)")
    assert html.count('target="_blank" rel="noopener noreferrer nofollow"') == 2


def test_relative_links_lose_their_target():
    assert "href" not in render_answer("[x](/admin/)")


def test_images_only_from_allowed_domains():
    markdown = "![tracker](http://127.0.0.1:9/?q=secret) ![logo](https://cdn.docs.test/logo.png)"
    html = render_answer(markdown, allowed_domains=["cdn.docs.test"])
    assert "127.0.0.1" not in html and "tracker" in html
    assert '<img src="https://cdn.docs.test/logo.png" alt="logo">' in html
    assert "<img" not in render_answer(markdown)


def test_an_allowed_domain_with_a_port_matches_that_port_only():
    markdown = "![a](http://localhost:8080/a.png) ![b](http://localhost:9090/b.png)"
    html = render_answer(markdown, allowed_domains=["localhost:8080"])
    assert "8080" in html and "9090" not in html


def test_tables_are_kept():
    html = render_answer("| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<table>" in html and "<td>1</td>" in html
