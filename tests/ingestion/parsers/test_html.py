"""Main-text extraction on real pages of the Django REST framework site."""

from ingestion.parsers.html import extract_page
from tests.conftest import DRF_SITE, SHARED

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


# --- A Sphinx site (the Django documentation): issue 26 ----------------------------------------

DJANGO_DOCS = SHARED / "sites" / "django-docs"


def django_page(path: str):
    return extract_page((DJANGO_DOCS / path).read_text(), "http://docs.test/" + path)


def test_a_sphinx_page_keeps_its_headings_and_the_anchors_on_their_wrappers():
    # trafilatura found no content frame it knows on these pages, gathered their paragraphs one by
    # one and dropped every heading: each page was one section, without an anchor.
    result = django_page("topics/cache.html")
    assert result.title == "Django’s cache framework"
    by_path = {tuple(s.heading_path): s for s in result.sections}
    memcached = by_path[("Django’s cache framework", "Setting up the cache", "Memcached")]
    assert memcached.anchor == "memcached"  # the id sits on <div class="section"> and a <span> before the <h3>
    assert by_path[("Django’s cache framework", "The per-site cache")].anchor == "the-per-site-cache"
    assert len(result.sections) > 20 and all(not h.endswith("¶") for s in result.sections for h in s.heading_path)


def test_a_page_title_is_its_own_heading_not_the_sites_name():
    # "django.urls functions …" has a dot, so trafilatura skipped that <title> part and took the
    # site header's <h1>, "Django 3.2.25 documentation", shared by many pages.
    assert django_page("ref/urls.html").title == "django.urls functions for use in URLconfs"


def test_code_keeps_its_line_breaks_as_a_fenced_block_and_prose_is_unwrapped():
    text = "\n\n".join(s.text for s in django_page("topics/cache.html").sections)
    assert (
        "```\nCACHES = {\n    'default': {\n        'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache',"
        in text
    )
    # the source wraps paragraphs at 80 columns: those breaks are not sentence ends
    assert "Each time a user requests a page, the Web server makes all sorts of calculations" in text


def test_a_bare_pre_keeps_its_lines_and_every_word_as_code():
    """A <pre> without <code> (configuration, shell sessions, plain-text examples) is code too."""
    html = (
        "<html><head><title>Config</title></head><body><main><h1>Config</h1>"
        + "<p>The kettle service reads its settings from one file on the server.</p>" * 3
        + "<p>Write it like this:</p><pre># the port\nport = <b>8080</b>\n  workers = 2 &lt;max&gt;</pre>"
        "</main></body></html>"
    )
    text = "\n".join(s.text for s in extract_page(html, BASE + "config/").sections)
    assert "Write it like this:\n\n```\n# the port\nport = 8080\n  workers = 2 <max>\n```" in text


def test_nested_list_items_are_listed_once_under_their_parent():
    html = (
        "<html><head><title>Setup</title></head><body><main><h1>Setup</h1>"
        + "<p>Follow these steps to install the kettle service on a server of your own.</p>" * 3
        + "<ul><li>Install the package<ul><li>with pip</li><li>or with apt</li></ul></li>"
        "<li>Start the service</li></ul></main></body></html>"
    )
    text = "\n".join(s.text for s in extract_page(html, BASE + "setup/").sections)
    assert "- Install the package\n  - with pip\n  - or with apt\n- Start the service" in text
    assert text.count("with pip") == 1


def test_code_in_a_sphinx_definition_keeps_its_lines_and_the_definition_its_paragraphs():
    # A function's description is a <dd> (trafilatura: a list item), its example a bare <pre> in it, on a
    # page whose content was rescued from its own element: the example came out as one line of prose
    # inside one bullet ("…login(): from django.contrib.auth import authenticate, login def my_view(…").
    text = "\n\n".join(s.text for s in django_page("topics/auth/default.html").sections)
    assert "\n\nlogin(request, user, backend=None)[source]\n\nTo log a user in, from a view, use login()." in text
    assert (
        "This example shows how you might use both authenticate() and login():\n\n"
        "```\nfrom django.contrib.auth import authenticate, login\n\ndef my_view(request):\n"
        "    username = request.POST['username']\n"
    ) in text
    assert "- To log a user in" not in text


def test_a_code_block_in_a_list_item_follows_the_items_line_as_a_fenced_block():
    html = (
        "<html><head><title>Setup</title></head><body><main><h1>Setup</h1>"
        + "<p>Follow these steps to install the kettle service on a server of your own.</p>" * 3
        + "<ol><li><p>Write the configuration:</p><pre>port = 8080\nworkers = 2</pre></li>"
        "<li>Start it with <code>kettle start</code></li></ol></main></body></html>"
    )
    text = "\n".join(s.text for s in extract_page(html, BASE + "setup/").sections)
    assert "1. Write the configuration:\n\n```\nport = 8080\nworkers = 2\n```\n\n2. Start it with kettle start" in text
