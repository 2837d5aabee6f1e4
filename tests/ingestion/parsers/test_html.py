"""Main-text extraction on real pages of the Django REST framework site."""

from ingestion.parsers.html import extract_page
from tests.conftest import DRF_SITE

BASE = "http://docs.test/"


def page(path: str):
    html = (DRF_SITE / path / "index.html").read_text()
    return extract_page(html, BASE + path + "/")


def test_it_keeps_title_headings_and_anchors():
    result = page("api-guide/serializers")
    assert result.title == "Serializers"
    by_heading = {tuple(s.heading_path): s for s in result.sections}
    section = by_heading[("Serializers", "Declaring Serializers")]
    assert section.anchor == "declaring-serializers"
    assert "CommentSerializer" in section.text
    nested = [s for s in result.sections if len(s.heading_path) >= 3]
    assert nested, "h4 sections keep their h3 parent in the path"
    assert all(not h.endswith("¶") for s in result.sections for h in s.heading_path)


def test_it_drops_navigation_and_keeps_code():
    result = page("api-guide/pagination")
    text = "\n".join(s.text for s in result.sections)
    assert "DEFAULT_PAGINATION_CLASS" in text
    # the site-wide navigation menu lists every guide; the main text of this page does not
    assert "Tutorial 4: Authentication & permissions" not in text


def test_it_finds_same_site_links_without_fragments():
    result = page("api-guide/serializers")
    assert BASE + "api-guide/fields/" in result.links
    assert all("#" not in link for link in result.links)
    assert len(result.links) == len(set(result.links))


def test_it_reads_robots_meta_and_canonical():
    html = (
        '<html><head><title>T</title><meta name="robots" content="noindex, nofollow">'
        '<link rel="canonical" href="/real/"></head><body><main><h1>T</h1><p>'
        + "Some text here. " * 30
        + '</p><a href="/other/">o</a></main></body></html>'
    )
    result = extract_page(html, "http://x.test/page/?a=1")
    assert result.noindex and result.nofollow
    assert result.canonical == "http://x.test/real/"
    assert result.links == []  # nofollow: links are not followed


def test_a_broken_page_yields_no_sections_rather_than_an_error():
    assert extract_page("", "http://x.test/").sections == []
    assert extract_page("\x00\x01 not html", "http://x.test/").sections == []


def test_visitors_comments_are_not_the_pages_content():
    article = "".join(
        f"<p>Refunds are paid within {n} days of the request, to the card that paid the order.</p>"
        for n in range(5, 12)
    )
    html = (
        "<html><head><title>Refunds</title></head><body><article><h1>Refunds</h1>" + article + "</article>"
        '<div id="comments" class="comments"><h3>3 comments</h3>'
        '<div class="comment"><p>Great post! Buy cheap watches at spam.example today.</p></div>'
        '<div class="comment"><p>My refund never came, this shop is a scam, avoid it.</p></div></div>'
        "</body></html>"
    )
    text = "\n".join(section.text for section in extract_page(html, BASE + "refunds/").sections)
    assert "Refunds are paid within 5 days" in text
    assert "cheap watches" not in text and "scam" not in text
