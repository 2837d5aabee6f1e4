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
    """Chunks for a document's sections (dicts with heading_path, text and anchor)."""
    drafts: list[ChunkDraft] = []
    for section in sections:
        heading_path = list(section.get("heading_path") or [])
        budget = max(32, max_tokens - count_tokens([" > ".join(heading_path)])[0] if heading_path else max_tokens)
        pieces: list[str] = []
        for piece, n in zip(paragraphs := _pieces(section.get("text") or ""), count_tokens(paragraphs)):
            pieces.extend([piece] if n <= budget else _split_long(piece, count_tokens, budget))
        if not pieces:
            continue
        for text, _ in _pack(pieces, count_tokens(pieces), budget, "\n\n"):
            search_text = search_text_for(heading_path, text)
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=text,
                    search_text=search_text,
                    heading_path=heading_path,
                    anchor=section.get("anchor") or "",
                    token_count=count_tokens([search_text])[0],
                )
            )
    return drafts
