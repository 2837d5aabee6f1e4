"""Excel (.xlsx, with openpyxl) and CSV: rows written with their column headers.

Each data row becomes one line ``Header: value; Header2: value`` (empty cells left out), and
rows are grouped ROWS_PER_SECTION to a section whose anchor is its first row:
``sheet=NAME&row=N`` (the sheet name percent-encoded) or ``row=N`` for CSV.

How a grid is read (empty rows and columns are dropped first):

* Caption rows: leading rows with a single filled cell in the first column ("3.1 Operating
  segments", "Revenue and results") are titles, added to the heading path.
* Header rows: the next row is a header row; the rows after it are more header rows while they
  hold no numbers and leave their first cell empty (a sub-header row under a grouped header).
  Multi-row headers are joined "Top / Sub", and a group header spreads right over the
  sub-headers it spans ("Results / Accuracy", "Results / Time to complete").
* Within the data, a row with only its first cell filled (a sub-heading or a footnote) is
  written as it is, without a header name.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from urllib.parse import quote

from .text import choose_title, decode_text, filename_title, one_line
from .types import ParsedDocument, Section

ROWS_PER_SECTION = 20
MAX_HEADER_ROWS = 4
_NUMBER = re.compile(r"^[-+(]?[$€£]?\s*\d[\d,.\s]*%?\)?$")


def parse_xlsx(path: str, filename: str) -> ParsedDocument:
    import openpyxl  # here, not at the top: CSV files do without its 0.2 s import

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        title = choose_title(workbook.properties.title, filename)
        sections = []
        for sheet in workbook.worksheets:
            rows = (
                (number, [_cell_text(value) for value in values])
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
            )
            anchor = f"sheet={quote(sheet.title, safe='')}&row={{row}}"
            sections += grid_sections(rows, [title, sheet.title], anchor)
    finally:
        workbook.close()
    warnings = [] if sections else ["no data found in the workbook"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def parse_csv(path: str, filename: str) -> ParsedDocument:
    with open(path, "rb") as file:
        text, _ = decode_text(file.read())
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows = ((number, [value.strip() for value in values]) for number, values in enumerate(reader, start=1))
    title = filename_title(filename)
    sections = grid_sections(rows, [title], "row={row}")
    warnings = [] if sections else ["no data found in the file"]
    return ParsedDocument(title=title, sections=sections, warnings=warnings)


def grid_sections(rows, heading_path: list[str], anchor: str) -> list[Section]:
    """Turn ``(row_number, cells)`` pairs into sections; ``anchor`` has a ``{row}`` field."""
    grid = [(number, cells) for number, cells in rows if any(cells)]
    if not grid:
        return []
    width = max(len(cells) for _, cells in grid)
    used = [column for column in range(width) if any(column < len(cells) and cells[column] for _, cells in grid)]
    grid = [(number, [cells[column] if column < len(cells) else "" for column in used]) for number, cells in grid]

    captions = []
    while len(grid) > 1 and len(used) > 1 and _only_first_filled(grid[0][1]):
        captions.append(grid.pop(0)[1][0])
    header_number, first_header = grid.pop(0)
    header_rows = [first_header]
    while (
        grid
        and len(header_rows) < MAX_HEADER_ROWS
        and not grid[0][1][0]
        and not any(_NUMBER.match(cell) for cell in grid[0][1])
    ):
        header_rows.append(grid.pop(0)[1])
    headers = _join_headers(header_rows, [column_letter(column + 1) for column in used])

    path = list(heading_path)
    path += [one_line(caption) for caption in captions if one_line(caption) != path[-1]]
    sections = []
    for start in range(0, len(grid), ROWS_PER_SECTION):
        group = grid[start : start + ROWS_PER_SECTION]
        text = "\n".join(_render_row(headers, cells) for _, cells in group)
        sections.append(Section(heading_path=path, text=text, anchor=anchor.format(row=group[0][0])))
    if not sections:  # a table with a header and no data: keep the header text
        sections.append(
            Section(heading_path=path, text="; ".join(filter(None, headers)), anchor=anchor.format(row=header_number))
        )
    return sections


def _join_headers(header_rows: list[list[str]], letters: list[str]) -> list[str]:
    """Combine header rows column by column into "Top / Sub" names ("Column B" when blank)."""
    spread = []
    for depth, row in enumerate(header_rows):
        below = header_rows[depth + 1] if depth + 1 < len(header_rows) else None
        row = list(row)
        for column in range(1, len(row)):
            # A group header covers the blank cells to its right that have sub-headers below.
            if not row[column] and row[column - 1] and below and below[column] and below[column - 1]:
                row[column] = row[column - 1]
        spread.append(row)
    headers = []
    for column, letter in enumerate(letters):
        parts = [one_line(row[column]) for row in spread if row[column]]
        deduplicated = [part for index, part in enumerate(parts) if index == 0 or part != parts[index - 1]]
        headers.append(" / ".join(deduplicated) or f"Column {letter}")
    return headers


def _render_row(headers: list[str], cells: list[str]) -> str:
    if _only_first_filled(cells):
        return one_line(cells[0])
    return "; ".join(f"{header}: {one_line(cell)}" for header, cell in zip(headers, cells) if cell)


def _only_first_filled(cells: list[str]) -> bool:
    return bool(cells[0]) and not any(cells[1:])


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time(0):
        return value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value).strip()


def column_letter(number: int) -> str:
    """A spreadsheet column's letters: 1 -> A, 26 -> Z, 27 -> AA."""
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters
