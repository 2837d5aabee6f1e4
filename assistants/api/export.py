"""Conversation exports as text, one line (JSONL) or one row (CSV) per message.

Shared by ``GET /api/v1/assistants/<id>/conversations/export`` and the ``export_conversations``
command; the rows come from :func:`assistants.api.selectors.conversation_export_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chatsite.lib.csv_export import csv_lines

COLUMNS = ["conversation_id", "created_at", "role", "text", "citations", "page_url"]
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def parse_bound(raw: str | None) -> datetime | None:
    """An ISO 8601 date-time (a naive one is in the site's time zone), None when absent; ValueError when unreadable."""
    if raw is None:
        return None
    value = parse_datetime(raw)
    if value is None:
        raise ValueError(f"{raw!r} is not an ISO 8601 date-time")
    value = timezone.make_aware(value) if timezone.is_naive(value) else value
    try:  # in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (e.g. +16:00)
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{raw!r} is out of range") from exc


def _jsonl(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def _csv(rows: Iterable[dict]) -> Iterator[str]:
    """A header, then each row; citations as a JSON array in one cell; no cell starts a formula."""
    return csv_lines(
        COLUMNS,
        (
            [json.dumps(row[name], ensure_ascii=False) if name == "citations" else row[name] for name in COLUMNS]
            for row in rows
        ),
    )


def export_lines(rows: Iterable[dict], export_format: str) -> Iterator[str]:
    """The export of ``rows`` in ``export_format`` (one of :data:`FORMATS`), a line at a time."""
    if export_format == "jsonl":
        return _jsonl(rows)
    if export_format == "csv":
        return _csv(rows)
    raise ValueError(f"unknown export format {export_format!r}; expected one of {', '.join(FORMATS)}")
