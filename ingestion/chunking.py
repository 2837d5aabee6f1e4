"""Token-sized chunks that keep their place in the document.

A section is cut at paragraph boundaries, then sentences, then words, into chunks of at most
``max_tokens`` tokens of the embedding model's tokenizer. Every chunk keeps its section's
heading path and anchor; what retrieval sees (``search_text``) starts with that path, so a
passage that never repeats its topic still matches it.
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


def search_text_for(heading_path: list[str], text: str) -> str:
    return (" > ".join(heading_path) + "\n" + text) if heading_path else text


def _pieces(text: str) -> list[str]:
    """Paragraphs, the natural unit; blocks of code and lists stay whole where they fit."""
    return [piece.strip() for piece in re.split(r"\n\s*\n", text) if piece.strip()]


def _split_long(piece: str, count: TokenCounter, max_tokens: int) -> list[str]:
    """Split one over-long paragraph into sentences, and an over-long sentence into words."""
    sentences = [s for s in _SENTENCE_END.split(piece) if s.strip()]
    if len(sentences) == 1:
        sentences = piece.split("\n") if "\n" in piece else [piece]
    out: list[str] = []
    for sentence, tokens in zip(sentences, count(sentences)):
        if tokens <= max_tokens:
            out.append(sentence)
            continue
        words = sentence.split()
        step = max(1, int(len(words) * max_tokens / tokens * 0.9))
        out.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return out


def _pack(pieces: list[str], tokens: list[int], max_tokens: int, joiner: str) -> Iterable[tuple[str, int]]:
    current: list[str] = []
    size = 0
    for piece, n in zip(pieces, tokens):
        if current and size + n > max_tokens:
            yield joiner.join(current), size
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        yield joiner.join(current), size


def chunk_sections(sections: list[dict], *, count_tokens: TokenCounter, max_tokens: int) -> list[ChunkDraft]:
    """Chunks for a document's sections (dicts with heading_path, text and anchor).

    Tokens are counted in a few batched calls per document (heading paths and paragraphs at once,
    then the chunks' search texts): a tokenizer call costs about a millisecond however short its text.
    """
    paths = [list(section.get("heading_path") or []) for section in sections]
    paragraphs = [_pieces(section.get("text") or "") for section in sections]
    counts = count_tokens([" > ".join(path) for path in paths] + [p for group in paragraphs for p in group])
    path_counts, paragraph_counts = counts[: len(paths)], iter(counts[len(paths) :])
    packed: list[tuple[list[str], str, str]] = []  # heading path, anchor, text
    for section, path, path_tokens, group in zip(sections, paths, path_counts, paragraphs):
        budget = max(32, max_tokens - path_tokens) if path else max_tokens
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
    search_texts = [search_text_for(path, text) for path, _, text in packed]
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
