"""Token-sized chunks that keep their place in the document.

A section is cut into blocks (paragraphs, fenced code blocks, lists), packed whole into chunks of
at most ``max_tokens`` tokens of the embedding model's tokenizer, so every chunk starts at a block
boundary. A block longer than that is cut at sentences (a paragraph), lines (code, re-fenced on
each side of the cut) or items (a list); only a single sentence longer than a chunk is cut at
words. Every chunk keeps its section's heading path and anchor; what retrieval sees
(``search_text``, for BM25 and the embedding alike) starts with the page title and that path, so
a passage that never repeats its topic still matches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")

TokenCounter = Callable[[list[str]], list[int]]


@dataclass
class ChunkDraft:
    ordinal: int
    text: str
    search_text: str
    heading_path: list[str]
    anchor: str
    token_count: int


_FENCE = re.compile(r"^(`{3,})[^\n]*$")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s")


def search_context(heading_path: list[str], title: str = "") -> list[str]:
    """The page title, then the heading path (which often starts with the title already)."""
    context = list(heading_path)
    if title and (not context or context[0].casefold() != title.casefold()):
        context.insert(0, title)
    return context


def search_text_for(heading_path: list[str], text: str, title: str = "") -> str:
    """What BM25 and the embedding see: the page title and the heading path, then the text."""
    context = search_context(heading_path, title)
    return (" > ".join(context) + "\n" + text) if context else text


def blocks(text: str) -> list[str]:
    """The blocks of a section's text: paragraphs and lists (separated by blank lines) and fenced
    code blocks, which stay whole with their blank lines."""
    out: list[str] = []
    current: list[str] = []
    fence = ""
    for line in text.split("\n"):
        opening = _FENCE.match(line.strip())
        if fence:
            current.append(line)
            if line.strip() == fence:
                out.append("\n".join(current))
                current, fence = [], ""
        elif opening:
            if current:
                out.append("\n".join(current))
            current, fence = [line], opening.group(1)
        elif not line.strip():
            if current:
                out.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        out.append("\n".join(current) + (f"\n{fence}" if fence else ""))  # an unclosed fence closed
    return [block.strip("\n") for block in out if block.strip()]


def _pieces(text: str) -> list[str]:
    return blocks(text)


def _code_parts(block: str) -> list[str] | None:
    """The lines of a fenced block, with its fence; None when ``block`` is not one."""
    lines = block.split("\n")
    opening = _FENCE.match(lines[0].strip()) if lines else None
    if not opening or len(lines) < 2 or lines[-1].strip() != opening.group(1):
        return None
    return [lines[0], *lines[1:-1], lines[-1]]


def _split_units(block: str) -> tuple[list[str], str]:
    """An over-long block's units and how they join again: a code block's lines (each unit re-fenced
    by the caller), a list's items, a paragraph's sentences."""
    lines = block.split("\n")
    if len(lines) > 1 and _LIST_ITEM.match(lines[0]):
        items: list[str] = []
        for line in lines:
            if _LIST_ITEM.match(line) or not items:
                items.append(line)
            else:
                items[-1] += "\n" + line  # a nested item or a continuation stays with its item
        return items, "\n"
    sentences = [s for s in _SENTENCE_END.split(block) if s.strip()]
    if len(sentences) == 1 and "\n" in block:
        sentences = [line for line in lines if line.strip()]
    return sentences, " "


def _split_code(parts: list[str], count: TokenCounter, max_tokens: int) -> list[str]:
    """A fenced block too long for one chunk, cut between lines, each piece fenced again."""
    opening, body, closing = parts[0], parts[1:-1], parts[-1]
    budget = max(8, max_tokens - sum(count([opening, closing])))
    out, current, size = [], [], 0
    for line, n in zip(body, count(body)):
        if current and size + n > budget:
            out.append("\n".join([opening, *current, closing]))
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        out.append("\n".join([opening, *current, closing]))
    return out


def _split_long(piece: str, count: TokenCounter, max_tokens: int) -> list[str]:
    """Split one over-long block at its natural boundaries (see the module's docstring), packing the
    units back together up to the budget; a single sentence still too long is cut at words."""
    code = _code_parts(piece)
    if code is not None:
        return _split_code(code, count, max_tokens)
    sentences, joiner = _split_units(piece)
    units: list[str] = []
    for sentence, tokens in zip(sentences, count(sentences)):
        if tokens <= max_tokens:
            units.append(sentence)
            continue
        inner = [part for part in _SENTENCE_END.split(sentence) if part.strip()]  # a long list item's sentences
        for part, n in zip(inner, count(inner)) if len(inner) > 1 else [(sentence, tokens)]:
            if n <= max_tokens:
                units.append(part)
                continue
            words = part.split()
            step = max(1, int(len(words) * max_tokens / n * 0.9))
            units.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return [text for text, _ in _pack(units, count(units), max_tokens, joiner)]


def _pack(pieces: list[str], tokens: list[int], max_tokens: int, joiner: str) -> Iterable[tuple[str, int]]:
    """Pieces joined into chunks of at most ``max_tokens``; a lead-in ending in ":" goes to the next
    chunk with the block it introduces ("In this example:" and its code) when they fit together."""
    current: list[str] = []
    counts: list[int] = []
    for piece, n in zip(pieces, tokens):
        if current and sum(counts) + n > max_tokens:
            carried: tuple[list[str], list[int]] = ([], [])
            if len(current) > 1 and current[-1].rstrip().endswith(":") and counts[-1] + n <= max_tokens:
                carried = ([current.pop()], [counts.pop()])
            yield joiner.join(current), sum(counts)
            current, counts = carried
        current.append(piece)
        counts.append(n)
    if current:
        yield joiner.join(current), sum(counts)


def chunk_sections(
    sections: list[dict], *, count_tokens: TokenCounter, max_tokens: int, title: str = ""
) -> list[ChunkDraft]:
    """Chunks for a document's sections (dicts with heading_path, text and anchor); ``title``, the
    document's, heads each chunk's search text unless its heading path already starts with it.

    Tokens are counted in a few batched calls per document (heading paths and paragraphs at once,
    then the chunks' search texts): a tokenizer call costs about a millisecond however short its text.
    """
    paths = [list(section.get("heading_path") or []) for section in sections]
    paragraphs = [_pieces(section.get("text") or "") for section in sections]
    contexts = [" > ".join(search_context(path, title)) for path in paths]
    counts = count_tokens(contexts + [p for group in paragraphs for p in group])
    path_counts, paragraph_counts = counts[: len(paths)], iter(counts[len(paths) :])
    packed: list[tuple[list[str], str, str]] = []  # heading path, anchor, text
    for section, path, context, path_tokens, group in zip(sections, paths, contexts, path_counts, paragraphs):
        budget = max(32, max_tokens - path_tokens) if context else max_tokens
        pieces: list[str] = []
        piece_counts: list[int] = []
        for piece, n in zip(group, paragraph_counts):
            if n <= budget:
                pieces.append(piece)
                piece_counts.append(n)
            else:
                split = _split_long(piece, count_tokens, budget)
                pieces.extend(split)
                piece_counts.extend(count_tokens(split))
        anchor = section.get("anchor") or ""
        packed.extend((path, anchor, text) for text, _ in _pack(pieces, piece_counts, budget, "\n\n"))
    search_texts = [search_text_for(path, text, title) for path, _, text in packed]
    return [
        ChunkDraft(
            ordinal=ordinal,
            text=text,
            search_text=search_text,
            heading_path=path,
            anchor=anchor,
            token_count=tokens,
        )
        for ordinal, ((path, anchor, text), search_text, tokens) in enumerate(
            zip(packed, search_texts, count_tokens(search_texts))
        )
    ]
