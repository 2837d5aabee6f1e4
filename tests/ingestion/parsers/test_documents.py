"""Every shared real document parses, and its content lands in the right section."""

from __future__ import annotations

import pytest

from ingestion.parsers import ParsedDocument

from .conftest import DOCS, find_section, parse_doc

ALL_DOCUMENTS = sorted(path.name for path in DOCS.iterdir())


def test_the_shared_documents_are_there():
    assert len(ALL_DOCUMENTS) == 15


@pytest.mark.parametrize("name", ALL_DOCUMENTS)
def test_every_document_parses_to_text_or_says_why_not(name, handbook):
    document = handbook if name == "handbook-872p.docx" else parse_doc(name)
    assert isinstance(document, ParsedDocument)
    assert document.title
    assert any(section.text.strip() for section in document.sections) or document.warnings
    assert all(section.heading_path[0] == document.title for section in document.sections)


@pytest.mark.parametrize(
    ("name", "phrase", "page"),
    [
        ("failure-after-repair.pdf", "ISBN 978 1 925136 98 2", 2),  # the slightly malformed xref
        ("multi-column.pdf", "using the dot product of their vectors", 3),
        ("reliance.pdf", "Integrated Annual Report 2021-22", 1),
        ("layout-parser-paper-with-table.pdf", "PubLayNet", 1),
    ],
)
def test_pdf_sections_are_pages_with_page_anchors(name, phrase, page):
    document = parse_doc(name)
    assert find_section(document, phrase).anchor == f"page={page}"
    assert [section.anchor for section in document.sections][:2] == ["page=1", "page=2"][: len(document.sections)]


def test_pdf_title_comes_from_its_metadata():
    document = parse_doc("interface-config-guide-p93.pdf")
    assert document.title == "Interface Configuration Guide"
    assert find_section(document, "Port Cross-Connect").heading_path == ["Interface Configuration Guide"]


def test_pdf_with_a_noisy_ocr_layer_yields_its_text():
    document = parse_doc("pdf-with-ocr-text.pdf")
    assert "progress of the Foundation" in document.sections[0].text or document.warnings


def test_docx_headings_build_the_heading_path(handbook):
    section = find_section(handbook, "The United States Trustee appoints and supervises standing trustees")
    assert section.heading_path == ["handbook-872p", "CHAPTER 1 – INTRODUCTION", "A. PURPOSE"]
    deeper = [section for section in handbook.sections if len(section.heading_path) == 4]
    assert deeper and deeper[0].heading_path[1].startswith("CHAPTER")
    assert len(handbook.sections) > 200


def test_docx_tables_are_pipe_tables_in_document_order():
    document = parse_doc("docx-tables.docx")
    text = document.sections[0].text
    assert "| Header Col 1 | Header Col 2 |\n| --- | --- |\n| Lorem ipsum | A link example |" in text
    assert text.index("Simple uniform table") < text.index("Header Col 1") < text.index("Nested Table")
    assert "| d | e, f; g&t, h | i |" in text  # the nested table, inline in its cell
    assert "| a | b | b |\n| --- | --- | --- |\n| a | c | d |\n| e | e | d |" in text  # merged cells repeated


def test_pptx_slide_titles_are_headings():
    document = parse_doc("sample-presentation.pptx")
    assert [section.anchor for section in document.sections] == ["slide=1", "slide=2", "slide=3", "slide=4"]
    second = document.sections[1]
    assert second.heading_path == ["sample-presentation", "This is the first content slide"]
    assert "And a list of bulleted information" in second.text
    table_slide = document.sections[3]
    assert table_slide.heading_path[-1] == "This is kinda backwards, huh?"
    assert table_slide.text.startswith("| Table | A | B | C |\n| --- | --- | --- | --- |\n| 1 | A1 | B1 | C1 |")


def test_pptx_overlong_title_keeps_its_first_line_as_heading():
    section = parse_doc("science-exploration-1p.pptx").sections[0]
    assert section.heading_path[-1] == "Code 600: Sciences and Exploration Directorate (SED)"
    assert "Code 610: Earth Sciences Division" in section.text
    assert "Virtual Machine Environment Scorecard" in section.text


def test_xlsx_rows_carry_their_header_names():
    document = parse_doc("2023-half-year-analyses-by-segment.xlsx")
    section = find_section(document, "In millions of CHF: Zone NA; Sales (a): 12553;")
    assert section.anchor == "sheet=OS-Rev.and%20results%2030%2006%202023&row=9"
    assert section.heading_path == [
        "2023-half-year-analyses-by-segment",
        "OS-Rev.and results 30 06 2023",
        "3. Analyses by segment",
        "3.1 Operating segments",
        "Revenue and results",
    ]
    assert "Trading operating profit: 2632" in section.text
    reconciliation = find_section(document, "Operating profit; January–June 2023: 7262; January–June 2022: 6619")
    assert reconciliation.anchor.startswith("sheet=Reconciliation")


def test_xlsx_sheets_are_separate_sections():
    document = parse_doc("stanley-cups.xlsx")
    assert [section.anchor for section in document.sections] == [
        "sheet=Stanley%20Cups&row=3",
        "sheet=Stanley%20Cups%20Since%2067&row=3",
    ]
    assert document.sections[1].heading_path == ["stanley-cups", "Stanley Cups Since 67"]
    assert "Team: Maple Leafs; Location: TOR; Stanley Cups: 0" in document.sections[1].text


def test_csv_caption_row_and_header():
    section = parse_doc("stanley-cups.csv").sections[0]
    assert section.heading_path == ["stanley-cups", "Stanley Cups"]
    assert section.anchor == "row=3"
    assert section.text.split("\n")[0] == "Team: Blues; Location: STL; Stanley Cups: 1"


def test_csv_multi_row_header_is_joined():
    section = parse_doc("table-multi-row-column-cells-actual.csv").sections[0]
    lines = section.text.split("\n")
    assert len(lines) == 4
    assert lines[0] == (
        "Disability Category: Blind; Participants: 5; Ballots Completed: 1; "
        "Ballots Incomplete/Terminated: 4; Results / Accuracy: 34.5%, n=1; "
        "Results / Time to complete: 1199 sec, n=1"
    )


def test_markdown_splits_on_headings_not_on_code_comments():
    document = parse_doc("unstructured-README.md")
    container = find_section(document, "# create the container")
    assert container.heading_path[-2:] == [":eight_pointed_black_star: Quick Start", "Run the library in a container"]
    assert container.anchor == "run-the-library-in-a-container"
    assert "```bash" in container.text
    learn = find_section(document, "| [Company Website](https://unstructured.io) |")
    assert learn.anchor == "books-learn-more"
    quick = [s for s in document.sections if s.heading_path[-1] == ":eight_pointed_black_star: Quick Start"]
    assert quick[0].anchor == "eight_pointed_black_star-quick-start"


def test_docx_sections_are_numbered_for_citations(handbook):
    anchors = [section.anchor for section in handbook.sections]
    assert anchors[:3] == ["section=1", "section=2", "section=3"] and len(set(anchors)) == len(anchors)
