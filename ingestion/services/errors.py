"""What the ingestion services refuse with, and how often a task may stop its worker."""

from __future__ import annotations

MAX_ATTEMPTS = 3  # a document or crawl that kills its worker this often ends failed


class IngestionError(Exception):
    """A problem the user can act on, in one sentence."""
