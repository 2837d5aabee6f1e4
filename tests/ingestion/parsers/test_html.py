"""Main-text extraction: real pages of the Django REST framework and Django sites, and the forms other site
generators give their code blocks."""

import re

import pytest
from lxml import etree

from ingestion.parsers.html import _content_blocks, extract_page
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


def small_page_text(
    body: str, intro: str = "The kettle service reads its settings from one file on the server."
) -> str:
    """The text extracted from a page of three paragraphs of ``intro`` (content enough for trafilatura), then
    ``body``."""
    html = f"<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>{f'<p>{intro}</p>' * 3}{body}</main></body></html>"
    return "\n".join(s.text for s in extract_page(html, BASE + "kettle/").sections)


def test_a_bare_pre_keeps_its_lines_and_every_word_as_code():
    """A <pre> without <code> (configuration, shell sessions, plain-text examples) is code too."""
    text = small_page_text(
        "<p>Write it like this:</p><pre># the port\nport = <b>8080</b>\n  workers = 2 &lt;max&gt;</pre>"
    )
    assert "Write it like this:\n\n```\n# the port\nport = 8080\n  workers = 2 <max>\n```" in text


def test_nested_list_items_are_listed_once_under_their_parent():
    text = small_page_text(
        "<ul><li>Install the package<ul><li>with pip</li><li>or with apt</li></ul></li><li>Start the service</li></ul>"
    )
    assert "- Install the package\n  - with pip\n  - or with apt\n- Start the service" in text
    assert text.count("with pip") == 1


def test_code_in_a_sphinx_definition_keeps_its_lines_and_the_definition_its_paragraphs():
    # A function's description is a <dd> (trafilatura: a list item), its example a bare <pre> in it, on a
    # page whose content was rescued from its own element: the example came out as one line of prose
    # inside one bullet ("…login(): from django.contrib.auth import authenticate, login def my_view(…").
    text = "\n\n".join(s.text for s in django_page("topics/auth/default.html").sections)
    assert "\n\nlogin(request, user, backend=None)\n\nTo log a user in, from a view, use login()." in text
    assert (
        "This example shows how you might use both authenticate() and login():\n\n"
        "```\nfrom django.contrib.auth import authenticate, login\n\ndef my_view(request):\n"
        "    username = request.POST['username']\n"
    ) in text
    assert "- To log a user in" not in text


def test_a_code_block_in_a_list_item_follows_the_items_line_as_a_fenced_block():
    text = small_page_text(
        "<ol><li><p>Write the configuration:</p><pre>port = 8080\nworkers = 2</pre></li>"
        "<li>Start it with <code>kettle start</code></li></ol>"
    )
    assert "1. Write the configuration:\n\n```\nport = 8080\nworkers = 2\n```\n\n2. Start it with kettle start" in text


CODE_BLOCKS = {
    # a <br> ended trafilatura's block: only "port = 8080" was kept of Docusaurus' code
    "docusaurus": '<div class="codeBlockContainer"><pre class="prism-code"><code class="codeBlockLines">'
    '<span class="token-line"><span class="token plain">port = 8080</span><br></span>'
    '<span class="token-line"><span class="token plain">workers = 2</span><br></span></code></pre></div>',
    "code with breaks": "<pre><code>port = 8080<br>workers = 2</code></pre>",
    "bare pre with breaks": "<pre>port = 8080<br>workers = 2</pre>",
    "breaks beside line ends": "<pre><code><span>port = 8080<br></span>\n<span>workers = 2<br></span></code></pre>",
    # line numbers beside the code (Pygments' and MkDocs' linenos) made a two-cell table: "| 1 2 | port = 8080 workers = 2 |"
    "a line-number table": '<table class="highlighttable"><tr><td class="linenos"><div class="linenodiv"><pre>1\n2</pre>'
    '</div></td><td class="code"><div class="highlight"><pre><span></span>port = 8080\nworkers = 2\n</pre></div></td></tr></table>',
    "inline line numbers": '<div class="highlight"><pre><span></span><span class="linenos">1</span>port = 8080\n'
    '<span class="linenos">2</span>workers = 2\n</pre></div>',
    # a language label beside the code in its container: trafilatura read it all as one paragraph, "shport = 8080 …"
    "vitepress": '<div class="language-sh vp-adaptive-theme"><button title="Copy Code" class="copy"></button>'
    '<span class="lang">sh</span><pre class="shiki vp-code"><code><span class="line"><span>port = 8080</span></span>\n'
    '<span class="line"><span>workers = 2</span></span></code></pre></div>',
    # each line a <div> of its own, in a <figure>: trafilatura dropped the figure and the code with it
    "starlight": '<div class="expressive-code"><figure class="frame"><figcaption class="header"></figcaption>'
    '<pre data-language="sh"><code><div class="ec-line"><div class="code"><span>port</span><span> = 8080</span></div>'
    '</div><div class="ec-line"><div class="code"><span>workers = 2</span></div></div></code></pre><div class="copy">'
    '<button title="Copy to clipboard"><div></div></button></div></figure></div>',
    "hugo": '<div class="highlight"><pre tabindex="0" class="chroma"><code class="language-toml"><span class="line">'
    '<span class="cl">port = 8080\n</span></span><span class="line"><span class="cl">workers = 2</span></span></code></pre></div>',
    # an empty anchor on each line (MkDocs Material's anchor_linenums: FastAPI, Pydantic): trafilatura dropped
    # the block as a widget of links, every code block of such a site gone
    "mkdocs material line anchors": '<div class="language-toml highlight"><pre><span></span><code><span id="__span-0-1">'
    '<a id="__codelineno-0-1" name="__codelineno-0-1" href="#__codelineno-0-1"></a>port = 8080\n</span>'
    '<span id="__span-0-2"><a id="__codelineno-0-2" name="__codelineno-0-2" href="#__codelineno-0-2"></a>workers = 2\n'
    "</span></code></pre></div>",
    # each line a <span class="line">, no line break between them (GitBook): "port = 8080workers = 2"
    "lines without breaks": '<pre class="code"><code><span class="line"><span>port = 8080</span></span>'
    '<span class="line"><span>workers = 2</span></span></code></pre>',
}


@pytest.mark.parametrize("block", CODE_BLOCKS.values(), ids=CODE_BLOCKS.keys())
def test_a_code_block_keeps_every_line_and_nothing_else_whatever_made_the_site(block):
    text = small_page_text(f"<p>Write it like this:</p>{block}<p>Then restart the service.</p>")
    assert "Write it like this:\n\n```\nport = 8080\nworkers = 2\n```\n\nThen restart the service." in text


def test_a_table_of_numbers_and_words_stays_a_table():
    text = small_page_text(
        "<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>10</td></tr></table>",
        intro="The kettle service costs the same every month, whatever you brew with it.",
    )
    assert "| Plan | Price |" in text and "| Basic | 10 |" in text


def test_an_accordions_questions_are_the_headings_of_their_answers():
    # Bootstrap's accordion: the question is a button inside the heading, which trafilatura dropped with
    # the button: each answer sat under the heading before it, its question's words nowhere.
    item = (
        '<div class="accordion-item"><h2 class="accordion-header"><button class="accordion-button collapsed" '
        'type="button" data-bs-toggle="collapse">{q}</button></h2><div class="accordion-collapse collapse">'
        '<div class="accordion-body"><p>{a}</p></div></div></div>'
    )
    html = (
        "<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>"
        + "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set.</p>" * 2
        + '<div class="accordion">'
        + item.format(q="Can I cancel at any time?", a="Yes, from the billing page; access lasts to the month's end.")
        + item.format(q="Do you ship abroad?", a="We ship to the EU and the UK within five days.")
        + "</div></main></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "faq/").sections}
    assert (
        sections[("Kettle", "Can I cancel at any time?")]
        == "Yes, from the billing page; access lasts to the month's end."
    )
    assert sections[("Kettle", "Do you ship abroad?")] == "We ship to the EU and the UK within five days."


def test_a_page_built_of_nested_divs_keeps_its_sections_and_its_line_breaks():
    # trafilatura keeps such a page's <div>s around its headings and paragraphs; read as one block each,
    # the whole page was one paragraph under its title ("Kettle for offices Pricing that grows with you …").
    text = "Kettle brews fresh tea for every person in your office, on a schedule your team sets in the app."
    body = "".join(
        f'<div class="section"><div class="container"><h2 class="heading">{heading}</h2>'
        + "".join(f'<div class="text-block">{text} Point {n} about {heading.lower()}.</div>' for n in range(3))
        + "</div></div>"
        for heading in ("Pricing", "Enterprise", "Delivery")
    )
    body += (
        '<div class="section"><h2>Opening hours</h2><div>Monday to Friday: 9 to 18<br>Saturday: 10 to 14</div></div>'
    )
    html = (
        "<html><head><title>Kettle</title></head><body><div class='navbar'><a href='/'>Home</a></div>"
        f"<div class='page'><h1>Kettle for offices</h1>{body}</div><div class='footer'>© Kettle</div></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "offices/").sections}
    assert list(sections) == [
        ("Kettle for offices", name) for name in ("Pricing", "Enterprise", "Delivery", "Opening hours")
    ]
    assert sections[("Kettle for offices", "Enterprise")].startswith(f"{text} Point 0 about enterprise.")
    assert "Pricing" not in sections[("Kettle for offices", "Enterprise")]
    assert sections[("Kettle for offices", "Opening hours")] == "Monday to Friday: 9 to 18\nSaturday: 10 to 14"


def test_a_code_block_that_trafilatura_quoted_is_still_code():
    text = "\n\n".join(s.text for s in django_page("howto/overriding-templates.html").sections)
    assert re.search(r'```\n\s*\{% extends "admin/base_site.html" %\}\n', text)


def test_a_docusaurus_heading_keeps_its_anchor():
    # its permalink is a zero-width space: the heading's text never matched trafilatura's, so no section
    # of a Docusaurus site had an anchor for its citations
    para = "<p>Kettle brews fresh tea for every person in your office, on a schedule your team sets in the app.</p>"
    html = (
        "<html><head><title>Configuration | Kettle</title></head><body><article><h1>Configuration</h1>"
        + para
        + '<h2 class="anchor" id="the-config-file">The config file<a href="#the-config-file" class="hash-link">'
        "\u200b</a></h2>" + para + "</article></body></html>"
    )
    sections = extract_page(html, BASE + "docs/config").sections
    assert [(s.heading_path, s.anchor) for s in sections][1] == (
        ["Configuration", "The config file"],
        "the-config-file",
    )


FAQ_ITEMS = [
    ("How hot does it get?", "It heats water to 100 degrees and stops on its own."),
    ("Can it make tea?", "Yes, the tea mode keeps the water at 80 degrees for green tea."),
]
CLOSED_ACCORDIONS = {
    # answers hidden in the page until their question is clicked: trafilatura drops hidden elements, so
    # every answer went, and a question that is a button outside a heading went too
    "hidden attribute": '<button aria-expanded="false" aria-controls="{id}">{q}</button><div id="{id}" hidden><p>{a}</p></div>',
    "inline display none (WordPress builders)": '<div class="item"><div class="tab-title" role="button" aria-expanded="false" '
    'aria-controls="{id}"><a href="">{q}</a></div><div id="{id}" class="tab-content" style="display:none"><p>{a}</p></div></div>',
    "a class named hidden (Tailwind)": '<button aria-expanded="false" aria-controls="{id}" class="w-full font-bold">{q}</button>'
    '<div id="{id}" class="mt-2 hidden"><p>{a}</p></div>',
    "a link in the heading (Bootstrap 3)": '<h3><a href="#{id}" data-toggle="collapse">{q}</a></h3>'
    '<div id="{id}" class="panel-collapse collapse" style="display: none"><p>{a}</p></div>',
    "details": "<details><summary>{q}</summary><p>{a}</p></details>",
    # Docusaurus renders a closed <details>' content with an inline display: none; the page fell back to one
    # flat paragraph
    "details hidden by a style (Docusaurus)": '<details data-collapsed="true"><summary>{q}</summary><div>'
    '<div style="display:none;overflow:hidden;height:0px"><p>{a}</p></div></div></details>',
}


@pytest.mark.parametrize("item", CLOSED_ACCORDIONS.values(), ids=CLOSED_ACCORDIONS.keys())
def test_a_closed_accordions_answers_are_kept_each_under_its_question(item):
    items = "".join(item.format(id=f"answer-{n}", q=q, a=a) for n, (q, a) in enumerate(FAQ_ITEMS))
    html = (
        "<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>"
        + "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set.</p>" * 2
        + f'<h2>Questions</h2><div class="faq">{items}</div></main></body></html>'
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "faq/").sections}
    for question, answer in FAQ_ITEMS:
        assert sections[("Kettle", "Questions", question)] == answer


def test_a_grid_of_cards_with_calls_to_action_keeps_every_card():
    # each card a short block with a link: trafilatura dropped such blocks as widgets of links, one by one,
    # and the page fell back to one flat paragraph ("Kettle … Pricing Basic $10 /month One kettle …")
    card = (
        '<div class="card"><h3>{plan}</h3><div class="price">{price}<span>/month</span></div>'
        '<ul><li>{kettles}</li><li>{support}</li></ul><a class="btn" href="/signup">Start free trial</a></div>'
    )
    html = (
        "<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>"
        + "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set.</p>" * 2
        + '<h2>Pricing</h2><div class="grid">'
        + card.format(plan="Basic", price="$10", kettles="One kettle", support="Email support")
        + card.format(plan="Office", price="$49", kettles="Ten kettles", support="Phone support")
        + "</div></main></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "pricing/").sections}
    assert sections[("Kettle", "Pricing", "Basic")].startswith("$10/month\n\n- One kettle\n- Email support")
    assert sections[("Kettle", "Pricing", "Office")].startswith("$49/month\n\n- Ten kettles\n- Phone support")


def test_a_listing_of_article_cards_keeps_every_card_under_its_title():
    # each post an <article> with its title a link and a "Read more": trafilatura took the first <article>
    # for the page's content, and the rest came out as loose paragraphs without their titles
    post = (  # WordPress numbers each post in its classes
        '<article class="post-{slug} post type-post hentry"><h3><a href="/blog/{slug}">{title}</a></h3><p>{text}</p>'
        '<a href="/blog/{slug}">Read more</a></article>'
    )
    html = (
        "<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>"
        + "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set.</p>" * 2
        + '<h2>Latest posts</h2><div class="posts">'
        + post.format(slug="17", title="Green tea at work", text="Why green tea keeps the office calm all afternoon.")
        + post.format(slug="23", title="Descaling made easy", text="How to descale an office kettle in ten minutes.")
        + "</div></main></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "blog/").sections}
    assert sections[("Kettle",)].startswith("Kettle is a hosted service")
    assert sections[("Kettle", "Latest posts", "Green tea at work")].startswith("Why green tea keeps the office calm")
    assert sections[("Kettle", "Latest posts", "Descaling made easy")].startswith("How to descale an office kettle")


def test_a_posts_page_with_the_next_posts_teaser_beside_it_is_that_post():
    # the teaser is an <article> of the same kind, but the post holds far more text: still the page's frame
    post = "".join(
        f"<p>Part {n} of why green tea keeps the office calm through the long afternoon.</p>" for n in range(8)
    )
    html = (
        '<html><head><title>Green tea</title></head><body><main><article class="post-17 post type-post">'
        f"<h1>Green tea at work</h1>{post}</article>"
        '<article class="post-23 post type-post"><h2><a href="/blog/23">Descaling made easy</a></h2>'
        "<p>How to descale an office kettle in ten minutes.</p></article></main></body></html>"
    )
    sections = extract_page(html, BASE + "blog/17/").sections
    assert [s.heading_path for s in sections] == [["Green tea at work"]]
    assert "Part 7 of why green tea" in sections[0].text and "descale" not in sections[0].text


def test_cards_that_are_links_as_a_whole_are_kept():
    # a feature grid of clickable cards (<a><h3>…</h3><p>…</p></a>): every card went as a link
    cards = "".join(
        f'<a class="feature" href="/{name.lower()}"><h3>{name}</h3><p>{text}</p></a>'
        for name, text in [
            ("Schedules", "Pick the hours when the kettle brews for the office."),
            ("Refills", "We refill the tea before it runs out, every week."),
        ]
    )
    text = small_page_text(f'<h2>Features</h2><div class="features">{cards}</div>')
    assert "Pick the hours when the kettle brews for the office." in text
    assert "We refill the tea before it runs out, every week." in text


def test_a_heading_by_its_aria_role_opens_a_section():
    html = (
        "<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>"
        + "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set.</p>" * 2
        + '<div role="heading" aria-level="2">Delivery</div><p>We deliver tea leaves twice a month to every office.</p>'
        + '<div role="heading">Returns</div><p>Unopened packs can be returned within thirty days for a refund.</p>'
        + "</main></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "terms/").sections}
    assert sections[("Kettle", "Delivery")] == "We deliver tea leaves twice a month to every office."
    assert sections[("Kettle", "Returns")] == "Unopened packs can be returned within thirty days for a refund."


def test_a_contact_pages_address_is_kept_line_by_line():
    # trafilatura drops <address>: "Where are you?" found no address on the contact page
    text = small_page_text(
        "<h2>Contact</h2><address>Kettle Ltd<br>1 Brew Street<br>London</address><p>Call us on +44 123.</p>"
    )
    assert text.endswith("Kettle Ltd\n1 Brew Street\nLondon\n\nCall us on +44 123.")


def test_a_table_that_lays_out_the_page_is_read_as_its_blocks_and_a_table_of_data_in_it_stays_one():
    # an old site's columns: the menu in one cell, the text in the other; the whole page was one table row
    html = (
        '<html><head><title>Kettle</title></head><body><table width="100%"><tr><td class="nav"><a href="/">Home</a>'
        '<br><a href="/about">About</a></td><td class="content"><h1>About us</h1>'
        "<p>Kettle is a hosted service that brews tea for your whole office on a schedule you set, every day.</p>"
        "<h2>Prices</h2><p>We started in a small kitchen in Leeds in 2019 with one kettle and a plan.</p>"
        "<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>10</td></tr></table>"
        "</td></tr></table></body></html>"
    )
    sections = {tuple(s.heading_path): s.text for s in extract_page(html, BASE + "about/").sections}
    assert sections[("About us",)].startswith("Kettle is a hosted service")
    assert sections[("About us", "Prices")] == (
        "We started in a small kitchen in Leeds in 2019 with one kettle and a plan.\n\n"
        "| Plan | Price |\n| --- | --- |\n| Basic | 10 |"
    )


def test_a_collapsible_note_inside_a_section_does_not_take_the_text_after_it():
    # MkDocs Material's "??? note": as a heading, its summary took the section's next paragraphs for its own
    text = small_page_text(
        "<h2>Brewing</h2><p>Fill the kettle to the line.</p><details class='note'><summary>Technical details</summary>"
        "<p>The element draws two kilowatts.</p></details><p>Then start the brew.</p>"
    )
    assert text.endswith(
        "Fill the kettle to the line.\n\nTechnical details\n\nThe element draws two kilowatts.\n\nThen start the brew."
    )


def test_an_asciidoc_page_keeps_its_code_in_place_and_a_note_is_its_text():
    # Asciidoctor wraps each listing in <div class="content">, a class trafilatura takes for the page's
    # frame: it read that one block first, so every page opened with its first listing; and a note is a
    # table of an icon's cell and the note's ("|  | Never run it as root … |")
    text = small_page_text(
        '<div class="sect1"><h2 id="_install">Install</h2><div class="sectionbody"><div class="paragraph"><p>Run the '
        'installer on every office machine.</p></div><div class="admonitionblock warning"><table><tr><td class="icon">'
        '<i class="fa icon-warning" title="Warning"></i></td><td class="content">Never run it as root on a shared '
        'server.</td></tr></table></div><div class="listingblock"><div class="content"><pre class="highlightjs '
        'highlight"><code class="language-bash hljs" data-lang="bash">./install.sh\nkettle start</code></pre></div>'
        "</div></div></div>"
    )
    assert text.startswith("The kettle service reads its settings")
    assert text.endswith(
        "Run the installer on every office machine.\n\nNever run it as root on a shared server.\n\n"
        "```\n./install.sh\nkettle start\n```"
    )


def test_a_menu_that_opens_is_not_an_answer():
    # a disclosure whose panel is links (a table of contents, a menu) stays as trafilatura leaves it
    text = small_page_text(
        '<h2>Brewing</h2><button aria-expanded="false" aria-controls="toc">On this page</button><div id="toc" hidden>'
        '<ul><li><a href="#a">Fill it</a></li><li><a href="#b">Start it</a></li></ul></div>'
        "<p>Fill the kettle to the line before you start the brew.</p>"
    )
    assert "On this page" not in text and "Fill it" not in text
    assert text.endswith("Fill the kettle to the line before you start the brew.")


def test_a_sphinx_signature_has_no_source_link():
    text = small_page_text(
        '<dl class="py function"><dt class="sig sig-object py" id="kettle.boil"><span class="sig-name descname">'
        '<span class="pre">boil</span></span><span class="sig-paren">(</span><em class="sig-param">litres</em>'
        '<span class="sig-paren">)</span><a class="reference internal" href="../_modules/kettle.html#boil">'
        '<span class="viewcode-link"><span class="pre">[source]</span></span></a><a class="headerlink" '
        'href="#kettle.boil">¶</a></dt><dd><p>Boil the given litres of water and return when done.</p></dd></dl>'
    )
    assert "boil(litres)\n" in text and "[source]" not in text


RADIO_TABS = {
    # MkDocs Material's content tabs: the labels together, then the panels in the same order
    "mkdocs material": '<div class="tabbed-set tabbed-alternate"><input checked id="__tabbed_1_1" name="__tabbed_1" '
    'type="radio"><input id="__tabbed_1_2" name="__tabbed_1" type="radio"><div class="tabbed-labels"><label '
    'for="__tabbed_1_1">macOS</label><label for="__tabbed_1_2">Linux</label></div><div class="tabbed-content">'
    '<div class="tabbed-block"><p>{mac}</p></div><div class="tabbed-block"><p>{linux}</p></div></div></div>',
    # VitePress' code group: each radio button beside its label, then the panels
    "vitepress code group": '<div class="vp-code-group"><div class="tabs"><input type="radio" name="group-a" id="tab-a" '
    'checked><label for="tab-a">macOS</label><input type="radio" name="group-a" id="tab-b"><label for="tab-b">Linux'
    '</label></div><div class="blocks"><div class="language-sh active"><p>{mac}</p></div><div class="language-sh">'
    "<p>{linux}</p></div></div></div>",
    # each label before its panel (MkDocs Material before 8, sphinx-design)
    "sphinx-design": '<div class="sd-tab-set"><input checked id="sd-tab-item-0" name="sd-tab-set-0" type="radio">'
    '<label class="sd-tab-label" for="sd-tab-item-0">macOS</label><div class="sd-tab-content"><p>{mac}</p></div>'
    '<input id="sd-tab-item-1" name="sd-tab-set-0" type="radio"><label class="sd-tab-label" for="sd-tab-item-1">'
    'Linux</label><div class="sd-tab-content"><p>{linux}</p></div></div>',
}


@pytest.mark.parametrize("tabs", RADIO_TABS.values(), ids=RADIO_TABS.keys())
def test_each_radio_tabs_panel_says_which_tab_it_is(tabs):
    mac, linux = "Run brew install kettle, then start it.", "Run apt install kettle, then start it."
    text = small_page_text("<h2>Install</h2>" + tabs.format(mac=mac, linux=linux))
    assert f"macOS:\n\n{mac}\n\nLinux:\n\n{linux}" in text


def test_each_tabs_panel_says_which_tab_it_is():
    # Docusaurus' tabs: the names made a list of their own ("- macOS\n- Linux") above panels that did not
    # say which was which, so "How do I install it on Linux?" found two install commands and no Linux.
    text = small_page_text(
        '<h2>Install</h2><div class="tabs-container"><ul role="tablist" class="tabs"><li role="tab" aria-selected="true">'
        'macOS</li><li role="tab" aria-selected="false">Linux</li></ul><div class="margin-top--md"><div role="tabpanel">'
        '<p>Run brew install kettle, then start it with kettle start.</p></div><div role="tabpanel" hidden>'
        "<p>Run apt install kettle, then start it with systemctl start kettle.</p></div></div></div>"
    )
    assert "macOS:\n\nRun brew install kettle" in text and "Linux:\n\nRun apt install kettle" in text
    assert "- macOS" not in text


def test_a_div_with_text_of_its_own_stays_one_block():
    main = etree.fromstring("<main><div><head>Plans</head><p>Basic.</p></div><div>Call <hi>us</hi> today.</div></main>")
    assert [element.tag for element in _content_blocks(main)] == ["head", "p", "div"]


def test_a_button_beside_a_headings_own_text_is_not_the_heading():
    intro = "<p>The kettle service reads its settings from one file on the server.</p>" * 3
    html = (
        f"<html><head><title>Kettle</title></head><body><main><h1>Kettle</h1>{intro}"
        '<h2>Delivery<button class="copy-link"><span class="sr-only">Copy link</span></button></h2>'
        "<p>We deliver tea leaves twice a month to every office on the plan.</p></main></body></html>"
    )
    sections = extract_page(html, BASE + "kettle/").sections
    assert sections[-1].heading_path == ["Kettle", "Delivery"]
    assert sections[-1].text == "We deliver tea leaves twice a month to every office on the plan."
