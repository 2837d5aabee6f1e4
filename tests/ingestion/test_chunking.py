"""Chunking of real pages with the real MiniLM tokenizer."""

import re

from ingestion.chunking import chunk_sections
from ingestion.parsers.html import extract_page
from tests.conftest import DRF_SITE


def sections_of(path: str):
    html = (DRF_SITE / path / "index.html").read_text()
    return [s.as_dict() for s in extract_page(html, f"http://docs.test/{path}/").sections]


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def test_chunks_fit_the_token_budget_and_keep_their_heading(embedder):
    sections = sections_of("api-guide/serializers")
    chunks = chunk_sections(sections, count_tokens=embedder.count_tokens, max_tokens=200)
    assert len(chunks) > 20
    assert all(chunk.token_count <= 200 for chunk in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    declaring = [c for c in chunks if c.heading_path[-1] == "Declaring Serializers"]
    assert declaring and all(c.anchor == "declaring-serializers" for c in declaring)
    assert declaring[0].search_text.startswith("Serializers > Declaring Serializers\n")


def test_no_text_is_lost_or_reordered(embedder):
    sections = sections_of("api-guide/throttling")
    chunks = chunk_sections(sections, count_tokens=embedder.count_tokens, max_tokens=120)
    assert words(" ".join(c.text for c in chunks)) == words(" ".join(s["text"] for s in sections))


def test_a_paragraph_longer_than_the_budget_is_split(embedder):
    long_text = " ".join(f"Sentence number {i} talks about throttling limits." for i in range(200))
    chunks = chunk_sections(
        [{"heading_path": ["Doc"], "text": long_text, "anchor": ""}], count_tokens=embedder.count_tokens, max_tokens=64
    )
    assert len(chunks) > 10
    assert all(c.token_count <= 64 for c in chunks)
    assert words(" ".join(c.text for c in chunks)) == words(long_text)


def test_empty_sections_make_no_chunks(embedder):
    assert (
        chunk_sections(
            [{"heading_path": ["A"], "text": "  \n\n ", "anchor": ""}],
            count_tokens=embedder.count_tokens,
            max_tokens=100,
        )
        == []
    )
