"""HTML and plain text (no shared samples of those), and the child's independence from Django."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingestion.parsers import parse_file
from tests.conftest import SHARED

from .conftest import doc

DRF_SERIALIZERS = SHARED / "sites/drf/api-guide/serializers/index.html"


def test_html_headings_build_the_heading_path_and_lose_their_pilcrow():
    document = parse_file(DRF_SERIALIZERS, filename="index.html")
    assert document.title == "Serializers"
    declaring = next(s for s in document.sections if "Let's start by creating a simple object" in s.text)
    assert declaring.heading_path == ["Serializers", "Declaring Serializers"]  # "Serializers" once
    assert "class Comment:" in declaring.text  # code blocks are kept


def test_html_tables_and_lists(tmp_path):
    page = tmp_path / "prices.htm"
    page.write_text(
        "<html><head><title>Prices</title></head><body><main><h1>Prices</h1>"
        "<p>" + "Our prices are simple and fair for every team. " * 4 + "</p>"
        "<h2>Plans¶</h2><table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>10</td></tr>"
        "<tr><td>Pro</td><td>30</td></tr></table>"
        "<h2>Included</h2><ul><li>Email support</li><li>Updates</li></ul>"
        "</main></body></html>"
    )
    document = parse_file(page, filename="prices.htm")
    plans = next(s for s in document.sections if s.heading_path[-1] == "Plans")
    assert plans.heading_path == ["Prices", "Plans"]
    assert plans.text == "| Plan | Price |\n| --- | --- |\n| Basic | 10 |\n| Pro | 30 |"
    included = next(s for s in document.sections if s.heading_path[-1] == "Included")
    assert included.text == "- Email support\n- Updates"


def test_plain_text_in_cp1252(tmp_path):
    (tmp_path / "notes.txt").write_bytes("Caf\u00e9 opening   hours\r\n\r\n\r\n\r\nMonday to Friday".encode("cp1252"))
    document = parse_file(tmp_path / "notes.txt", filename="notes.txt")
    assert document.title == "notes"
    assert document.sections[0].text == "Caf\u00e9 opening hours\n\nMonday to Friday"


def test_the_child_never_imports_django():
    check = (
        "import sys; from ingestion.parsers.worker import parse_path; "
        f"parse_path({str(doc('docx-tables.docx'))!r}, 'a.docx', ''); "
        f"parse_path({str(doc('stanley-cups.xlsx'))!r}, 'a.xlsx', ''); "
        "assert not any(name.split('.')[0] == 'django' for name in sys.modules), 'django imported'"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", check], cwd=root, check=True, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(
    "number, letters", [(1, "A"), (26, "Z"), (27, "AA"), (52, "AZ"), (702, "ZZ"), (703, "AAA"), (16384, "XFD")]
)
def test_column_letters_name_columns_as_spreadsheets_do(number, letters):
    from ingestion.parsers.spreadsheet import column_letter

    assert column_letter(number) == letters
