"""From a fetched HTML page to its title, its sections and its links.

trafilatura finds the main content (navigation, footers and sidebars go); its XML output keeps
the heading structure, which becomes each section's heading path. The anchors that let a
citation link to ``page#section`` come from the original HTML, where the headings carry ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

import lxml.etree
import lxml.html
import trafilatura
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

from ingestion.parsers.text import pipe_table
from ingestion.parsers.types import Section

HEADING_TAGS = {f"h{level}" for level in range(1, 7)}
_PERMALINK = re.compile(r"[\s¶#§🔗]+$")
_SPACES = re.compile(r"[ \t\r\f\v]+")


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
            parent = heading.getparent()
            if parent is not None and parent.tag == "section" and parent.get("id"):
                anchor = parent.get("id")
        key = _heading_key(heading.text_content())
        if anchor and key and key not in anchors:
            anchors[key] = anchor
    return anchors


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
        items = [" ".join("".join(item.itertext()).split()) for item in element.iter("item")]
        return "\n".join(f"- {item}" for item in items if item)
    if element.tag == "code":
        return "".join(element.itertext()).strip("\n")
    return _SPACES.sub(" ", "".join(element.itertext())).strip()


def _sections_from_xml(xml: str, title: str, anchors: dict[str, str]) -> list[Section]:
    root = lxml.etree.fromstring(xml.encode())
    main = root.find("main")
    if main is None:
        main = root
    stack: list[tuple[int, str]] = []  # (level, heading)
    sections: list[Section] = []
    current = Section(heading_path=[title] if title else [], text="")
    blocks: list[str] = []

    def flush():
        text = "\n\n".join(block for block in blocks if block)
        if text.strip():
            current.text = text
            sections.append(current)

    for element in main:
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
    xml = trafilatura.extract(
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
    title = page_title(tree)
    sections = _sections_from_xml(xml, title, _heading_anchors(tree)) if xml else []
    return Page(title=title, sections=sections, links=links, canonical=canonical, noindex=noindex, nofollow=nofollow)
