"""Answers as safe HTML: Markdown rendered by markdown-it-py, then cleaned by nh3 with an allow-list.

Model output is untrusted: it may quote a hostile page or follow a prompt injection. So raw HTML in
the Markdown is shown as text, only http/https/mailto links survive (opening in a new tab, with
``rel="noopener noreferrer nofollow"``), images are dropped unless their host is one of the
assistant's allowed domains (an image is a request the visitor's browser makes: it could carry
conversation text to a third party), and ``[n]`` markers become links to the cited sources.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

LINK_REL = "noopener noreferrer nofollow"
_CITATION = re.compile(r"\[(\d{1,2})\]")
_SAFE_SCHEMES = {"http", "https", "mailto"}

TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "a",
    "blockquote",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "img",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "img": {"src", "alt"}}

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def _host_allowed(url: str, allowed_domains: list[str]) -> bool:
    """Whether ``url`` is an http(s) URL on one of ``allowed_domains`` ("host" or "host:port")."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    candidates = {parts.hostname, f"{parts.hostname}:{port}"} if port else {parts.hostname}
    return any(domain.lower() in candidates for domain in allowed_domains)


def _drop_foreign_images(children: list[Token], allowed_domains: list[str]) -> None:
    """Replace each image whose host is not allowed by its alt text."""
    for index, token in enumerate(children):
        if token.type == "image" and not _host_allowed(token.attrGet("src") or "", allowed_domains):
            text = Token("text", "", 0)
            text.content = token.content
            children[index] = text


def _link_citations(children: list[Token], citations: dict[int, dict]) -> list[Token]:
    """Split text tokens around ``[n]`` markers and turn each cited marker into a link."""
    result: list[Token] = []
    inside_link = 0
    for token in children:
        inside_link += {"link_open": 1, "link_close": -1}.get(token.type, 0)
        if token.type != "text" or inside_link:
            result.append(token)
            continue
        # The split alternates plain text (even indexes) and the numbers of markers (odd indexes).
        for index, piece in enumerate(_CITATION.split(token.content)):
            if index % 2 and int(piece) in citations:
                result.extend(_citation_link(int(piece), citations[int(piece)]))
            elif piece:
                result.append(Token("text", "", 0, content=f"[{piece}]" if index % 2 else piece))
    return result


def _citation_link(number: int, citation: dict) -> list[Token]:
    attrs = {"href": citation["url"], "class": "cite", "title": citation.get("title") or ""}
    return [
        Token("link_open", "a", 1, attrs=attrs),
        Token("text", "", 0, content=f"[{number}]"),
        Token("link_close", "a", -1),
    ]


def _clean_image_src(tag: str, attribute: str, value: str, allowed_domains: list[str]) -> str | None:
    if tag == "img" and attribute == "src" and not _host_allowed(value, allowed_domains):
        return None
    return value


def render_answer(text: str, citations: list[dict] | None = None, allowed_domains: list[str] | None = None) -> str:
    """Sanitised HTML for an answer's Markdown ``text``; ``citations`` as in ``Message.citations``."""
    allowed_domains = [str(domain) for domain in allowed_domains or []]
    web = [c for c in citations or [] if urlsplit(str(c.get("url") or "")).scheme in {"http", "https"}]
    by_number = {int(c["n"]): c for c in web}
    tokens = _markdown.parse(text or "")
    for token in tokens:
        if token.type == "inline" and token.children:
            _drop_foreign_images(token.children, allowed_domains)
            token.children = _link_citations(token.children, by_number)
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=lambda tag, attribute, value: _clean_image_src(tag, attribute, value, allowed_domains),
        url_schemes=_SAFE_SCHEMES,
        url_relative="deny",
        link_rel=LINK_REL,
        allowed_classes={"a": {"cite"}},
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
