"""Chunking of real pages with the real MiniLM tokenizer."""

import re

from ingestion.chunking import chunk_sections
from ingestion.parsers.html import extract_page
from tests.conftest import DRF_SITE, SHARED


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


def test_code_blocks_stay_whole_and_fenced_with_their_lead_in(embedder):
    code = "```\nCACHES = {\n    'default': {\n\n        'BACKEND': 'locmem',\n    }\n}\n```"
    text = "Caching needs a setting. " * 12 + "\n\nIn this example:\n\n" + code + "\n\nThat is all."
    chunks = chunk_sections(
        [{"heading_path": ["Cache"], "text": text, "anchor": ""}], count_tokens=embedder.count_tokens, max_tokens=80
    )
    with_code = [c for c in chunks if "CACHES" in c.text]
    assert len(with_code) == 1 and code in with_code[0].text  # the blank line inside the code did not cut it
    assert with_code[0].text.startswith("In this example:")


def test_a_code_block_longer_than_a_chunk_is_cut_between_lines_and_fenced_again(embedder):
    lines = [f"    'option_{n}': {n},  # comment number {n}" for n in range(80)]
    code = "```\nSETTINGS = {\n" + "\n".join(lines) + "\n}\n```"
    chunks = chunk_sections(
        [{"heading_path": ["Settings"], "text": code, "anchor": ""}], count_tokens=embedder.count_tokens, max_tokens=100
    )
    assert len(chunks) > 3 and all(c.token_count <= 100 for c in chunks)
    assert all(c.text.startswith("```\n") and c.text.endswith("\n```") for c in chunks)
    body = [line for c in chunks for line in c.text.split("\n")[1:-1]]
    assert body == ["SETTINGS = {", *lines, "}"]  # every line, whole, in order


def test_chunks_of_a_real_page_start_at_a_sentence_or_a_block(embedder):
    # Source line breaks inside paragraphs were taken for boundaries: chunks began mid-sentence.
    # (Only a single sentence longer than a whole chunk is still cut at words.)
    page = extract_page((SHARED / "sites/django-docs/topics/cache.html").read_text(), "http://d.test/c.html")
    sections = [s.as_dict() for s in page.sections]
    chunks = chunk_sections(sections, count_tokens=embedder.count_tokens, max_tokens=200, title=page.title)
    assert len(chunks) > 30
    texts = {tuple(s["heading_path"]): s["text"] for s in sections}
    for chunk in chunks:
        text = texts[tuple(chunk.heading_path)]
        head = chunk.text.split("\n")[0][:40]
        at = text.find(head)
        assert at >= 0, head
        before = text[:at]
        assert before == "" or before.endswith("\n") or re.search(r"[.!?:]\s$", before), (before[-60:], head)


def test_the_search_text_carries_the_title_and_the_heading_path(embedder):
    sections = [{"heading_path": ["Install", "With pip"], "text": "Run pip install kettle.", "anchor": ""}]
    chunk = chunk_sections(sections, count_tokens=embedder.count_tokens, max_tokens=100, title="Kettle manual")[0]
    assert chunk.search_text == "Kettle manual > Install > With pip\nRun pip install kettle."
    titled = [{"heading_path": ["Kettle manual", "Install"], "text": "Run it.", "anchor": ""}]
    chunk = chunk_sections(titled, count_tokens=embedder.count_tokens, max_tokens=100, title="Kettle manual")[0]
    assert chunk.search_text == "Kettle manual > Install\nRun it."
