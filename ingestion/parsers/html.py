"""From a fetched HTML page to its title, its sections and its links.

trafilatura finds the main content (navigation, footers and sidebars go); its XML output keeps
the heading structure, which becomes each section's heading path. The anchors that let a
citation link to ``page#section`` come from the original HTML: the heading's own id, its
permalink, or the id of the wrapper it opens (Sphinx puts ids on ``<div class="section">`` and
empty ``<span>``s before the heading, not on the heading).

When trafilatura finds no content frame it recognises, it gathers the page's paragraphs one by
one and drops every heading (a Sphinx page came out as one section under its title). Then the
element holding most of the page's paragraph text is taken as the main content and extracted
again on its own, headings and all.

Blocks keep their form: code and preformatted text as a fenced block with its line breaks (in the
rescued extraction and inside list items too; lines ended by ``<br>``, as Docusaurus writes them, or
each a ``<div>`` in a ``<figure>``, as Astro Starlight does; line numbers and a label beside the code
left out), headings whole (an accordion's question is a button in its heading, or a button of its own
whose answer the page hides until it is clicked), each tab's panel under its tab's name, lists as
Markdown list items (a nested list indented under its item, never repeated in the item's own text),
definition lists as their terms and their definitions' own paragraphs and code, tables as pipe tables.
What trafilatura would drop as boilerplate but a company's site is made of stays: the cards of a grid
(each with its "Learn more"), an answer hidden until its question is clicked, an ``<address>``, a page
laid out in a table (:func:`_for_extraction` lists each case).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

import lxml.etree
import lxml.html
import trafilatura
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title
from trafilatura.xpaths import BODY_XPATH

from ingestion.parsers.text import pipe_table
from ingestion.parsers.types import Section

HEADING_TAGS = {f"h{level}" for level in range(1, 7)}
MAIN_SHARE = 0.8  # the main-content element holds at least this share of the page's paragraph text
_PERMALINK = re.compile(r"[\s¶#§🔗\u200b\u200c\u200d\u2060\ufeff]+$")  # a permalink sign, or Docusaurus' zero-width one
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINE_NUMBERS = re.compile(r"[\d\s]+")
_LINE_NUMBER_CLASS = re.compile(r"\blinenos?\b|\bline-?numbers?\b")
_LINE_PERMALINK = re.compile(r"[ \t]*¶[ \t]*$", re.M)  # a definition's permalink sign left at the end of its line
_HIDING_CLASS = re.compile(r"hid(?:e|den)\b")  # a class that hides an element ("hidden", "is-hidden", "hide-sm")


@dataclass
class Page:
    title: str
    sections: list[Section]
    links: list[str] = field(default_factory=list)
    canonical: str = ""
    noindex: bool = False
    nofollow: bool = False

    @property
    def text_length(self) -> int:
        return sum(len(section.text) for section in self.sections)


def clean_heading(text: str) -> str:
    return _PERMALINK.sub("", " ".join(text.split()))


def _heading_key(text: str) -> str:
    return clean_heading(text).casefold()


def _heading_anchors(tree) -> dict[str, str]:
    """Heading text → the fragment id that scrolls to it (first heading of that text wins)."""
    anchors: dict[str, str] = {}
    for heading in tree.iter(*HEADING_TAGS):
        anchor = heading.get("id") or ""
        if not anchor:
            for child in heading.iter("a"):
                anchor = child.get("id") or child.get("name") or ""
                if not anchor and (child.get("href") or "").startswith("#"):
                    anchor = child.get("href")[1:]
                if anchor:
                    break
        if not anchor:
            anchor = _wrapper_anchor(heading)
        key = _heading_key(heading.text_content())
        if anchor and key and key not in anchors:
            anchors[key] = anchor
    return anchors


def _wrapper_anchor(heading) -> str:
    """The id of what a heading opens: empty id-only elements right before it (Sphinx's
    ``<span id="...">``), or the element it is the first child of (``<section id>``,
    ``<div class="section" id>``)."""
    previous = heading.getprevious()
    while previous is not None and not (previous.text_content() or "").strip():
        if previous.get("id"):
            return previous.get("id")
        previous = previous.getprevious()
    parent = heading.getparent()
    if parent is not None and parent.get("id") and parent.tag not in {"body", "main", "article"}:
        first = next((child for child in parent if isinstance(child.tag, str) and child.tag not in {"span", "a"}), None)
        if first is heading:
            return parent.get("id")
    return ""


def _robots_meta(tree) -> tuple[bool, bool]:
    noindex = nofollow = False
    for meta in tree.iter("meta"):
        if (meta.get("name") or "").lower() in {"robots", "chatsitebot"}:
            content = (meta.get("content") or "").lower()
            noindex |= "noindex" in content or "none" in content
            nofollow |= "nofollow" in content or "none" in content
    return noindex, nofollow


def page_links(tree, base_url: str) -> list[str]:
    """Absolute http(s) links of the page, fragments removed, in document order, unique."""
    base = base_url
    for element in tree.iter("base"):
        if element.get("href"):
            base = urljoin(base_url, element.get("href"))
            break
    seen: dict[str, None] = {}
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            continue
        if "nofollow" in (anchor.get("rel") or "").lower():
            continue
        url = urldefrag(urljoin(base, href))[0]
        if url.startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


def fence(code: str) -> str:
    """``code`` as a fenced Markdown block, its line breaks kept (a longer fence when it holds one)."""
    marker = "```"
    while marker in code:
        marker += "`"
    return f"{marker}\n{code}\n{marker}"


def _list_parts(element, depth: int = 0) -> list[tuple[bool, str]]:
    """A list as Markdown: ``(True, line)`` for an item's line, ``(False, block)`` for a block of its own.

    An item is its own text on one line, then its nested lists indented under it (``itertext`` of an
    item also holds its sub-items, which were then listed again); a code block inside an item (a
    ``<pre>``: text over several lines) follows the item's line as a fenced block, its lines kept. A
    definition list (``<dl>``, trafilatura's "dl") is no list to a reader: each term is a line of its
    own, and each definition its own paragraphs, code, lists and tables (a Sphinx reference page puts
    a function's whole description, examples and all, in one)."""
    parts: list[tuple[bool, str]] = []
    ordered = (element.get("rend") or "") == "ol"
    definitions = (element.get("rend") or "") == "dl"
    number = 0
    for item in element:
        if item.tag != "item":
            continue
        if definitions:
            parts.extend(_definition_parts(item))
            continue
        own = [item.text or ""]
        nested: list[tuple[bool, str]] = []
        for child in item:
            if child.tag == "list":
                nested.extend(_list_parts(child, depth + 1))
            elif child.tag == "code" and "\n" in "".join(child.itertext()).strip("\n"):
                nested.append((False, _block_text(child)))
            else:
                own.append(
                    " " + "".join(child.itertext()) + " " if child.tag in {"p", "code"} else "".join(child.itertext())
                )
            own.append(child.tail or "")
        text = " ".join("".join(own).split())
        if text:
            number += 1
            parts.append((True, f"{'  ' * depth}{f'{number}.' if ordered else '-'} {_LINE_PERMALINK.sub('', text)}"))
        parts.extend(nested)
    return parts


def _definition_parts(item) -> list[tuple[bool, str]]:
    """A term of a definition list as a paragraph on one line; a definition as its own blocks."""
    if (item.get("rend") or "").startswith("dt"):
        term = _LINE_PERMALINK.sub("", " ".join("".join(item.itertext()).split()))
        return [(False, term)] if term else []
    parts: list[tuple[bool, str]] = []
    loose = [item.text or ""]  # text outside the definition's blocks, a paragraph when it ends
    for child in item:
        if child.tag in {"list", "code", "table", "p", "quote"}:
            if text := " ".join("".join(loose).split()):
                parts.append((False, text))
            loose = []
            if child.tag == "list":
                parts.extend(_list_parts(child))
            elif block := _block_text(child):
                parts.append((False, block))
        else:
            loose.append("".join(child.itertext()))
        loose.append(child.tail or "")
    if text := " ".join("".join(loose).split()):
        parts.append((False, text))
    return parts


def _list_blocks(element) -> list[str]:
    """A list's blocks (see :func:`_list_parts`): consecutive item lines are one block."""
    out: list[str] = []
    lines: list[str] = []
    for is_line, text in _list_parts(element):
        if is_line:
            lines.append(text)
            continue
        if lines:
            out.append("\n".join(lines))
            lines = []
        out.append(text)
    if lines:
        out.append("\n".join(lines))
    return out


def _inline_text(element) -> str:
    """A paragraph's text on one line: the source's line breaks are wrapping, not structure (a
    sentence cut there started chunks and excerpts mid-sentence); a ``<br>`` (``lb``) is a break."""
    parts = [(element.text or "").replace("\n", " ")]
    for child in element:
        parts.append("\n" if child.tag == "lb" else _inline_text(child))
        parts.append((child.tail or "").replace("\n", " "))
    return "".join(parts)


def _block_text(element) -> str:
    """Readable text of one block of trafilatura's XML (paragraph, list, table, code)."""
    if element.tag == "table":
        return pipe_table(
            [
                [" ".join("".join(cell.itertext()).split()) for cell in row if cell.tag == "cell"]
                for row in element.iter("row")
            ]
        )
    if element.tag == "list":
        return "\n\n".join(_list_blocks(element))
    if (
        element.tag == "quote"
        and len(element) == 1
        and element[0].tag == "code"
        and not "".join([element.text or "", element[0].tail or ""]).strip()
    ):
        element = element[0]  # a code block trafilatura wrapped in a quote (Sphinx's highlight <div>s)
    if element.tag == "code":
        code = "".join(element.itertext()).strip("\n")
        return fence(code) if code.strip() else ""
    lines = (" ".join(line.split()) for line in _inline_text(element).split("\n"))
    return _LINE_PERMALINK.sub("", "\n".join(line for line in lines if line)).strip()


def _main_of(xml: str):
    root = lxml.etree.fromstring(xml.encode())
    main = root.find("main")
    return root if main is None else main


def _first_h1(main) -> str:
    """The main content's own top heading, when it opens with one: the page's title as a reader sees
    it (``<title>`` often only names the site, or its first part is cut at a dot)."""
    for element in _content_blocks(main):
        if element.tag == "head":
            return clean_heading("".join(element.itertext())) if element.get("rend") == "h1" else ""
        if "".join(element.itertext()).strip():
            return ""
    return ""


_BLOCK_TAGS = {"head", "p", "list", "table", "code", "quote", "div"}


def _content_blocks(element):
    """The headings and blocks of trafilatura's XML in reading order: a ``<div>`` of blocks is no block but a
    wrapper it keeps from a page built of nested ``<div>``s (whose headings and paragraphs, read as one
    block, made the whole page one paragraph under its title). A ``<div>`` with text of its own between
    its children stays one block, as it was."""
    for child in element:
        wrapper = (
            child.tag == "div"
            and not (child.text or "").strip()
            and all(grandchild.tag in _BLOCK_TAGS and not (grandchild.tail or "").strip() for grandchild in child)
        )
        if wrapper:
            yield from _content_blocks(child)
        else:
            yield child


def _sections_from_xml(main, title: str, anchors: dict[str, str]) -> list[Section]:
    stack: list[tuple[int, str]] = []  # (level, heading)
    sections: list[Section] = []
    current = Section(heading_path=[title] if title else [], text="")
    blocks: list[str] = []

    def flush():
        text = "\n\n".join(block for block in blocks if block)
        if text.strip():
            current.text = text
            sections.append(current)

    for element in _content_blocks(main):
        if element.tag == "head":
            heading = clean_heading("".join(element.itertext()))
            if not heading:
                continue
            flush()
            blocks = []
            level = int((element.get("rend") or "h2")[1:] or 2)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
            path: list[str] = [title] if title else []
            for _, name in stack:  # "Serializers > Serializers" says nothing twice
                if not path or path[-1].casefold() != name.casefold():
                    path.append(name)
            current = Section(heading_path=path, text="", anchor=anchors.get(heading.casefold(), ""))
        else:
            blocks.append(_block_text(element))
    flush()
    return sections


def page_title(tree) -> str:
    """trafilatura's choice of title (meta and JSON-LD titles, else a lone h1, else ``<title>``),
    without the rest of its metadata: its date search alone cost more than the content extraction."""
    meta = examine_meta(tree)
    try:
        meta = extract_meta_json(tree, meta)
    except Exception:  # trafilatura guards its JSON-LD reader the same way
        pass
    title = clean_heading(meta.title or extract_title(tree) or "")
    if not title and (element := tree.find(".//title")) is not None:
        title = clean_heading(element.text_content())
    return title


def _trafilatura_xml(html: str, url: str) -> str | None:
    return trafilatura.extract(
        html,
        url=url,
        output_format="xml",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,  # only <main> is read: finding comments was a quarter of the time, thrown away
        favor_recall=True,
    )


def _paragraph_container(tree):
    """The deepest element holding at least ``MAIN_SHARE`` of the page's paragraph text (code and
    list items count too), or None."""
    body = tree.find(".//body")
    if body is None:
        return None
    sizes: dict = {}
    for block in body.iter("p", "pre", "li", "dd", "td"):
        size = len(block.text_content() or "")
        for ancestor in block.iterancestors():
            sizes[ancestor] = sizes.get(ancestor, 0) + size
            if ancestor is body:
                break
    total = sizes.get(body, 0)
    if not total:
        return None
    element = body
    while True:
        child = max(
            (c for c in element if isinstance(c.tag, str) and sizes.get(c, 0) >= MAIN_SHARE * total),
            key=lambda c: sizes[c],
            default=None,
        )
        if child is None:
            return element
        element = child


def _rescued_main(tree, url: str):
    """The main content extracted from its own element, when trafilatura's frame lost the headings
    the page has there (see the module's docstring); None when that does not apply."""
    container = _paragraph_container(tree)
    if container is None or container.tag == "body":
        return None
    if not any(True for _ in container.iter(*(HEADING_TAGS - {"h1"}))):
        return None
    head = tree.find("head")
    page = "<html>{}<body><main>{}</main></body></html>".format(
        lxml.html.tostring(head, encoding="unicode") if head is not None else "",
        lxml.html.tostring(container, encoding="unicode"),
    )
    xml = _trafilatura_xml(page, url)
    if not xml:
        return None
    main = _main_of(xml)
    return main if main.find(".//head") is not None else None


def _with_class(name: str, below: str = "//") -> str:
    """An XPath to the elements below (``below``) with the class ``name`` among their classes."""
    return f"{below}*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"


_LINES = _with_class("line", below=".//")  # a code line's own element
_VIEWCODE = _with_class("viewcode-link")  # Sphinx's "[source]"


def _inline_line_number(element) -> bool:
    """A line number inside a code block (Pygments' inline ``linenos``): not the code's text."""
    return bool(_LINE_NUMBER_CLASS.search(element.get("class") or ""))


def _needs_plain_code(pre) -> bool:
    """Whether trafilatura would lose lines of this ``<pre>``, or keep line numbers in it: without ``<code>``
    it makes it a quote on one line, at a ``<br>`` (Docusaurus ends each line of its code blocks with one)
    it ends the block, and a block of lines each in a ``<div>`` of its own (Expressive Code: Astro
    Starlight) it drops whole."""
    return (
        next(pre.iter("code"), None) is None
        or next(pre.iter("br", "div", "p"), None) is not None
        or any(_inline_line_number(element) for element in pre.iter())
        or any(_unbroken_line(element) for element in pre.xpath(_LINES))
    )


def _classes(element) -> list[str]:
    return (element.get("class") or "").split()


def _unbroken_line(element) -> bool:
    """A code line of its own element (``<span class="line">``: Shiki, Prism, GitBook) with the next line
    right after it, no line break between: its text ran into the next line's ("port = 8080workers = 2")."""
    following = element.getnext()
    return (
        "line" in _classes(element)
        and following is not None
        and "line" in _classes(following)
        and not (element.tail or "").startswith("\n")
        and not element.text_content().endswith("\n")  # Hugo ends a line's own text with its break
    )


def _gutter(cell) -> bool:
    """A code listing's line-number cell: a ``<pre>`` of numbers only."""
    return next(cell.iter("pre"), None) is not None and _LINE_NUMBERS.fullmatch(cell.text_content()) is not None


def _listings(tree) -> list:
    """Code listings with line numbers beside them (Pygments' and MkDocs' ``linenos``): one-row tables of
    a line-number cell and one cell of code."""
    listings = []
    for table in tree.iter("table"):
        rows = table.findall(".//tr")
        cells = rows[0].findall("td") if len(rows) == 1 else []
        if any(_gutter(cell) for cell in cells) and sum(1 for cell in cells if not _gutter(cell)) == 1:
            listings.append(table)
    return listings


def _heading_buttons(tree) -> list:
    """The button that is a heading's whole text: an accordion's question (Bootstrap's ``<h2><button>…``),
    which trafilatura drops with the button, leaving its answer under the heading before it. A button
    beside a heading's own text (a "copy link" icon) is not the heading."""
    buttons = []
    for heading in tree.iter(*HEADING_TAGS):
        inside = list(heading.iter("button"))
        if len(inside) == 1 and (inside[0].text_content() or "").strip() == (heading.text_content() or "").strip():
            buttons.extend(inside)
    return buttons


def _labels_beside_code(tree) -> list:
    """Inline elements beside a code block in its container (VitePress' language label, a file name, a
    copy button): with them trafilatura reads the container as a paragraph and the code as its text, on
    one line ("shnpm install kettle kettle start")."""
    return [
        sibling
        for pre in tree.iter("pre")
        if (parent := pre.getparent()) is not None and parent.tag in {"div", "figure", "section"}
        for sibling in parent
        if sibling is not pre and sibling.tag in {"span", "button", "label", "small"}
    ]


def _tab_sets(tree) -> list[tuple]:
    """Tabbed content (ARIA tabs: Docusaurus, Bootstrap): ``([tab list], [(label, panel), …])`` where the tabs
    and the panels of their container pair up one to one, in order. Read as they are, the labels make a
    list of their own above the panels ("- macOS - Linux"), and no panel says which it is."""
    sets = []
    for tablist in tree.xpath("//*[@role='tablist']"):
        tabs = tablist.xpath(".//*[@role='tab']")
        container = tablist.getparent()
        while container is not None and not container.xpath(".//*[@role='tabpanel']"):
            container = container.getparent()
        if container is None or not tabs:
            continue
        panels = [
            panel
            for panel in container.xpath(".//*[@role='tabpanel']")
            if not panel.xpath("ancestor::*[@role='tabpanel']")
        ]
        labels = [" ".join(tab.text_content().split()) for tab in tabs]
        if len(panels) == len(tabs) and all(labels):
            sets.append(([tablist], list(zip(labels, panels))))
    return sets + _radio_tab_sets(tree)


_ARIA_HEADINGS = "//*[@role='heading'][not(self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6)]"
_PANEL_TAGS = {"div", "section", "article", "pre", "p", "ul", "ol", "table", "dl"}


def _radio_tab_sets(tree) -> list[tuple]:
    """Tabs made of radio buttons and their labels (MkDocs Material's content tabs, sphinx-design's tab
    sets, VitePress' code groups): as :func:`_tab_sets`, with the labels to leave out. Each label either comes
    right before its panel (``input, label, panel`` in turn), or the labels stand together (with their
    radio buttons or not) and the panels, in the same order, are the children of the element after them."""
    groups: dict[str, list] = {}
    for radio in tree.xpath("//input[@type='radio'][@name][@id]"):
        groups.setdefault(radio.get("name"), []).append(radio)
    sets = []
    for radios in groups.values():
        labels = [next(iter(tree.xpath("//label[@for=$id]", id=radio.get("id"))), None) for radio in radios]
        if len(radios) < 2 or any(label is None for label in labels):
            continue
        parents = {label.getparent() for label in labels}
        holder = next(iter(parents))
        if len(parents) == 1 and all(child.tag in {"label", "input"} for child in holder):
            panels = list(holder.getnext()) if holder.getnext() is not None else []
            chrome = [holder]
        else:
            panels = [label.getnext() for label in labels]
            while any(panel is not None and panel.tag == "input" for panel in panels):
                panels = [panel.getnext() if panel is not None and panel.tag == "input" else panel for panel in panels]
            chrome = labels
        names = [" ".join(label.text_content().split()) for label in labels]
        if (
            len(panels) == len(labels)
            and all(names)
            and all(panel is not None and panel.tag in _PANEL_TAGS for panel in panels)
            and len({id(panel) for panel in panels}) == len(panels)
        ):
            sets.append((chrome, list(zip(names, panels))))
    return sets


def _disclosures(tree) -> list[tuple]:
    """Disclosure widgets (accordions: an FAQ's questions, each a button that opens its answer):
    ``(control, [panel, …])``. A closed panel is often hidden in the page itself (``hidden``, an inline
    ``display: none``, a class named "hidden"), and trafilatura drops hidden elements, so the answers went;
    a question that is a button and not a heading was dropped too, and a ``<details>``' summary took the
    level of the heading above it. Tabs and menus (a panel mostly of links) are not disclosures."""
    pairs = []
    controls = tree.xpath(
        "//*[@aria-expanded or @data-toggle='collapse' or @data-bs-toggle='collapse']"
        "[@aria-controls or @data-target or @data-bs-target or starts-with(@href, '#')]"
    )
    for control in controls:
        if control.get("role") == "tab" or control.get("aria-haspopup") not in (None, "false"):
            continue
        targets = (control.get("aria-controls") or "").split() or [
            (control.get("data-bs-target") or control.get("data-target") or control.get("href") or "").removeprefix("#")
        ]
        panels = [
            panel
            for target in targets
            if target
            for panel in tree.xpath("//*[@id=$id]", id=target)[:1]
            if control not in panel.iterancestors() and panel not in control.iterancestors() and not _links_only(panel)
        ]
        if panels:
            pairs.append((control, panels))
    return (
        pairs
        + [  # a <details>' content, unless hidden (Docusaurus hides it with an inline style), trafilatura reads
            (summary, [element for element in summary.getparent().iter() if _hidden(element)])
            for summary in tree.iter("summary")
            if summary.getparent() is not None
        ]
    )


_HIDING_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")


def _hidden(element) -> bool:
    """Whether the page's own markup hides ``element`` (what :func:`_shown` undoes)."""
    return (
        element.get("hidden") is not None
        or element.get("aria-hidden") == "true"
        or bool(_HIDING_STYLE.search(element.get("style") or ""))
        or any(_HIDING_CLASS.search(name) for name in _classes(element))
    )


def _details_within_text(summary) -> bool:
    """Whether this is the summary of a ``<details>`` that the section's text goes on after (a collapsible
    note: MkDocs Material's ``???``): as a heading it would take that text for its own; a run of
    ``<details>`` to the end of their container (an FAQ) are headings."""
    details = summary.getparent()
    return (
        summary.tag == "summary"
        and details is not None
        and any(isinstance(after.tag, str) and after.tag != "details" for after in details.itersiblings())
    )


def _links_only(panel) -> bool:
    """A panel whose text is mostly links: a menu or a table of contents, not an answer."""
    text = _text_length(panel)
    return text == 0 or 2 * _text_length(*panel.iter("a")) >= text


def _shown(panel) -> None:
    """A hidden panel made visible: what hid it in the page's own markup removed."""
    for attribute in ("hidden", "aria-hidden", "style"):
        panel.attrib.pop(attribute, None)
    classes = [name for name in _classes(panel) if not _HIDING_CLASS.search(name)]
    if classes:
        panel.set("class", " ".join(classes))
    else:
        panel.attrib.pop("class", None)


CARD_MAX_TEXT = 300  # characters: the most a block can hold for trafilatura to test it as a widget of links


def _card_links(tree) -> list:
    """The links of cards in a grid (pricing plans, features, a team; each with a "Start free trial" or
    "Learn more"): two or more sibling blocks alike (:func:`_kind`), each short, with a link but more text
    outside its links than in them. trafilatura drops a short block with a link in it as a widget of
    links, the cards went one by one, and a page of cards came out as one flat paragraph. Their links are
    calls to action, not navigation: read as text they keep the cards. So are cards that are links as a
    whole (a link holding a heading and its text), which went the same way."""
    short: dict = {}  # each element a link is in: whether its text is short (then its parent may hold a grid)
    for link in tree.iter("a"):
        element = link
        while element is not None and element not in short:
            short[element] = _short(element)
            element = element.getparent() if short[element] else None
    links = []
    for parent in dict.fromkeys(element.getparent() for element, is_short in short.items() if is_short):
        if parent is None or parent.tag in {"pre", "code"}:  # code's links: read as text anyway
            continue
        alike: dict[tuple, list] = {}
        for child in parent:
            if isinstance(child.tag, str) and (child.tag not in {"a", "li", "p", "span"} or _linked_card(child)):
                alike.setdefault(_kind(child), []).append(child)
        for cards in alike.values():
            inside = [list(card.iter("a")) for card in cards]
            if len(cards) >= 2 and all(
                _linked_card(card)
                or (
                    card_links
                    and 2 * _text_length(*card_links) < _text_length(card) <= CARD_MAX_TEXT
                    and not any(_permalink(link) for link in card_links)  # a section with its permalink: no card
                )
                for card, card_links in zip(cards, inside)
            ):
                links.extend(link for card_links in inside for link in card_links)
    return list(dict.fromkeys(links))  # a grid's cards can be cards of an outer grid too


def _linked_card(element) -> bool:
    """A link that holds a heading and a block of text: a card one clicks as a whole."""
    return (
        element.tag == "a"
        and next(element.iter(*HEADING_TAGS), None) is not None
        and next(element.iter("p", "div", "ul"), None) is not None
        and _text_length(element) <= CARD_MAX_TEXT
    )


def _permalink(link) -> bool:
    """A heading's link to itself (``<h2>Install<a href="#install">¶</a></h2>``)."""
    return (link.get("href") or "").startswith("#") and _in_heading(link)


def _in_heading(element) -> bool:
    return any(ancestor.tag in HEADING_TAGS for ancestor in element.iterancestors())


def _short(element) -> bool:
    """Whether ``element``'s text is at most ``CARD_MAX_TEXT`` characters, read only as far as that."""
    length = 0
    for text in element.itertext():
        length += len("".join(text.split()))
        if length > CARD_MAX_TEXT:
            return False
    return True


def _text_length(*elements) -> int:
    return sum(len("".join(element.text_content().split())) for element in elements)


def _layout_tables(tree) -> list:
    """Tables that lay a page out rather than hold data (an old site's columns: the menu in one cell, the
    text in another): marked so (``role="presentation"``), with a heading in a cell, or a frame around one
    cell of text (:func:`_one_cell_of_text`). As a table the whole page became one row of two cells. A
    listing with line numbers beside it is one too, but that is :func:`_listings`'."""
    listings = _listings(tree)
    return [
        table
        for table in tree.iter("table")
        if table not in listings
        and (
            table.get("role") in {"presentation", "none"}
            or any(next(cell.iter(*HEADING_TAGS), None) is not None for cell in table.iter("td", "th"))
            or _one_cell_of_text(table)
        )
    ]


def _one_cell_of_text(table) -> bool:
    """A table of one row whose text is in one cell (AsciiDoc's note: an icon's cell and the note's)."""
    rows = _own(table, "tr")
    return len(rows) == 1 and sum(1 for cell in rows[0] if cell.tag in {"td", "th"} and _text_length(cell)) == 1


def _own(table, *tags) -> list:
    """The table's elements of these tags, not those of a table inside one of its cells."""
    return [element for element in table.iter(*tags) if next(element.iterancestors("table")) is table]


_BLOCKS = ("p", "pre", "ul", "ol", "dl", "table", "blockquote", *sorted(HEADING_TAGS))


def _first_frame(tree):
    """The element trafilatura takes first for the page's content frame (the first of its body XPaths that
    finds one), or None."""
    for expression in BODY_XPATH:
        found = next((element for element in expression(tree) if element is not None), None)
        if found is not None:
            return found
    return None


def _false_frame(frame) -> bool:
    """A frame that is not the page's content: one of several alike holding at most twice the others' text
    (a listing's cards, each an ``<article>``: the page was its first card, and the rest only what
    trafilatura gathered after), or of
    one block at most (trafilatura keeps what it extracted from it, goes on to the next frame and puts that
    block first: AsciiDoc wraps each code listing in a ``<div class="content">``, one of trafilatura's
    frame classes, and every page opened with its first listing, out of its place)."""
    if frame is None:
        return False
    alike = _alike(frame)
    # one of several cards: the others hold about as much text (a post's page with the next post's teaser
    # beside it, alike, is still that post)
    return (alike and _text_length(frame) <= 2 * _text_length(*alike)) or sum(1 for _ in frame.iter(*_BLOCKS)) <= 1


def _alike(element) -> list:
    """``element``'s siblings of its kind (:func:`_kind`)."""
    kind = _kind(element)
    return [
        sibling
        for sibling in (*element.itersiblings(preceding=True), *element.itersiblings())
        if _kind(sibling) == kind
    ]


def _kind(element) -> tuple:
    """An element's tag and classes, less the classes that number it (WordPress' ``post-123``)."""
    return element.tag, frozenset(name for name in _classes(element) if not any(c.isdigit() for c in name))


def _unframed(page) -> None:
    """Each false frame trafilatura would take first made an ordinary element, until its first is a real one."""
    for _ in range(100):
        frame = _first_frame(page)
        if not _false_frame(frame):
            return
        for element in [frame, *_alike(frame)]:  # all the cards at once: each is the evidence for the others
            for attribute in ("id", "class", "itemprop", "role"):
                element.attrib.pop(attribute, None)
            if element.tag in {"article", "main"}:
                element.tag = "div"


def _code_figures(tree) -> list:
    """Figures that frame a code block (Expressive Code: Astro Starlight): trafilatura drops figures, images'
    or not, and the code went with them."""
    return [figure for figure in tree.iter("figure") if next(figure.iter("pre"), None) is not None]


def _for_extraction(tree):
    """The page as trafilatura should read it (a copy), or the page itself when nothing needs changing:

    * a listing with line numbers is its code alone, not a table of two cells;
    * a ``<pre>`` that trafilatura would cut (:func:`_needs_plain_code`) is ``<pre><code>`` with its text
      only, each ``<br>`` and each line's ``<div>`` a line break;
    * a figure framing code is no image;
    * the labels beside a code block are left out (a language, a copy button: chrome, and a lead-in
      "… like this:" must be followed by its code);
    * a heading's button is its text;
    * each tab's panel opens with the tab's name ("Linux:") in place of the row of tabs (ARIA tabs, or
      radio buttons and their labels);
    * a disclosure's panel (an accordion's answer) is shown, and its button, when no heading holds it, is
      a heading one level below the heading before it; so is a ``<details>``' summary, unless the section's
      text goes on after it (:func:`_details_within_text`: then it is a paragraph);
    * Sphinx's "[source]" link beside a signature is left out;
    * the links of cards in a grid are text (:func:`_card_links`), and so are links in code: an empty
      anchor on each line (MkDocs Material's ``anchor_linenums``: FastAPI, Pydantic) made trafilatura drop
      every code block as a widget of links;
    * an element that is a heading by its ARIA role is a heading, and an ``<address>`` a paragraph;
    * a table that lays the page out (:func:`_layout_tables`) is its cells' blocks in order;
    * an element trafilatura would take for the content frame but that is not (:func:`_false_frame`: one
      of several alike, or holding one block at most) is an ordinary element."""
    pres = [pre for pre in tree.iter("pre") if _needs_plain_code(pre)]
    if not (
        pres
        or _listings(tree)
        or _heading_buttons(tree)
        or _labels_beside_code(tree)
        or _tab_sets(tree)
        or _code_figures(tree)
        or _disclosures(tree)
        or tree.xpath(_VIEWCODE)
        or _card_links(tree)
        or next(tree.iterfind(".//pre//a"), None) is not None
        or _layout_tables(tree)
        or tree.xpath(_ARIA_HEADINGS)
        or next(tree.iter("address"), None) is not None
        or _false_frame(_first_frame(tree))
    ):
        return tree
    page = copy.deepcopy(tree)
    questions = []  # a disclosure's button outside a heading: a heading one level below the one before it
    for control, panels in _disclosures(page):
        for panel in panels:
            _shown(panel)
        label = " ".join(control.text_content().split())
        if label and not _in_heading(control):
            before = control.xpath("preceding::*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5][1]")
            level = min(6, int(before[0].tag[1]) + 1 if before else 2)
            questions.append((control, label, "p" if _details_within_text(control) else f"h{level}"))
    for control, label, tag in questions:
        replacement = lxml.html.Element(tag)
        replacement.text, replacement.tail = label, control.tail
        control.getparent().replace(control, replacement)
    for link in _card_links(page):
        link.drop_tag()
    for link in list(page.iterfind(".//pre//a")):
        link.drop_tag()  # code's links (MkDocs Material's line anchors, API links) made trafilatura drop it
    for element in page.xpath(_ARIA_HEADINGS):  # a heading to screen readers is one to the reader too
        level = element.get("aria-level") or ""
        element.tag = f"h{min(6, max(1, int(level)))}" if level.isdigit() else "h2"
    for table in _layout_tables(page):
        for element in [table, *_own(table, "thead", "tbody", "tfoot", "tr", "td", "th", "caption")]:
            element.tag = "div"  # its cells' blocks read in order, as the page shows them
    for address in page.iter("address"):
        address.tag = "p"  # trafilatura drops <address>: a company's own, on its contact page
    for link in page.xpath(_VIEWCODE):
        holder = link.getparent()
        (holder if holder.tag == "a" and len(holder) == 1 and not (holder.text or "").strip() else link).drop_tree()
    for table in _listings(page):
        pre = next(next(cell for cell in table.find(".//tr").findall("td") if not _gutter(cell)).iter("pre"), None)
        if pre is not None:
            pre.tail = table.tail
            table.getparent().replace(table, pre)
    for pre in [pre for pre in page.iter("pre") if _needs_plain_code(pre)]:
        for number in [element for element in pre.iter() if _inline_line_number(element)]:
            number.drop_tree()  # its tail, the line's code, stays
        for line in pre.iter("div", "p"):
            if next(line.iterdescendants("div", "p"), None) is None and not (line.tail or "").startswith("\n"):
                line.tail = "\n" + (line.tail or "")  # a line of its own: the innermost block holding it
        for line in [element for element in pre.xpath(_LINES) if _unbroken_line(element)]:
            line.tail = "\n" + (line.tail or "")
        for br in pre.iter("br"):
            after = br.tail or ""
            if not after and br.getnext() is None and br.getparent() is not pre:
                after = br.getparent().tail or ""  # "<span>line<br></span>\n<span>…": the break is there already
            if not after.startswith("\n"):
                br.tail = "\n" + (br.tail or "")
        code = lxml.html.Element("code")
        code.text = pre.text_content()  # the text only: trafilatura drops the words inside <b> in code
        for child in list(pre):
            pre.remove(child)
        pre.text = None
        pre.append(code)
    for figure in _code_figures(page):
        figure.tag = "div"
        for caption in figure.iter("figcaption"):
            caption.tag = "p"  # a file name, when the frame has one
    for label in _labels_beside_code(page):
        label.drop_tree()  # its tail stays
    for button in _heading_buttons(page):
        button.drop_tag()
    for chrome, tabs in _tab_sets(page):
        for label, panel in tabs:
            named = lxml.html.Element("p")
            named.text = f"{label}:"
            panel.insert(0, named)
        for element in chrome:
            element.drop_tree()
    _unframed(page)
    return page


def extract_page(html: str, url: str) -> Page:
    """Title, main-content sections (with heading paths and anchors) and links of a page."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return Page(title="", sections=[])
    noindex, nofollow = _robots_meta(tree)
    canonical = ""
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            canonical = urldefrag(urljoin(url, link.get("href").strip()))[0]
            break
    links = [] if nofollow else page_links(tree, url)
    page = _for_extraction(tree)  # both extractions below read it: a rescued page's code keeps its lines too
    xml = _trafilatura_xml(html if page is tree else lxml.html.tostring(page, encoding="unicode"), url)
    main = _main_of(xml) if xml else None
    if main is not None and main.find(".//head") is None:
        rescued = _rescued_main(page, url)
        main = main if rescued is None else rescued
    title = (_first_h1(main) if main is not None else "") or page_title(tree)
    sections = _sections_from_xml(main, title, _heading_anchors(tree)) if main is not None else []
    return Page(title=title, sections=sections, links=links, canonical=canonical, noindex=noindex, nofollow=nofollow)
