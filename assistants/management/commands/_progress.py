"""What ``add_source --wait`` and ``upload_documents --wait`` share: following a run to its end."""

import time

from django.core.management.base import CommandError

from ingestion.models import CrawlRun, Source
from ingestion.selectors import source_progress


def progress_line(progress: dict) -> str:
    run, documents = progress["run"] or {}, progress["documents"]
    return (
        f"{run.get('status', 'no run')}: pages found {run.get('pages_found', 0)}, fetched {run.get('pages_fetched', 0)},"
        f" failed {run.get('pages_failed', 0)}; documents ready {documents['ready']}, pending {documents['pending']};"
        f" chunks {documents['chunks']}"
    )


def wait_for_run(*, source: Source, run: CrawlRun, stdout, interval: float, timeout: float) -> CrawlRun:
    """Poll until ``run`` is done or failed, writing a progress line whenever it changes, then the report."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        source.refresh_from_db()
        line = progress_line(source_progress(source=source))
        if line != last:
            stdout.write(line)
            last = line
        run.refresh_from_db()
        if not run.is_active:
            break
        if time.monotonic() > deadline:
            raise CommandError(f"The run is still {run.status} after {timeout:.0f} s; it goes on in the worker.")
        time.sleep(interval)
    write_report(run=run, stdout=stdout)
    return run


def write_report(*, run: CrawlRun, stdout) -> None:
    stdout.write(
        f"Run {run.pk} {run.status}: {run.pages_fetched} fetched, {run.pages_unchanged} unchanged,"
        f" {run.pages_skipped} skipped, {run.pages_failed} failed, {run.chunks_embedded} chunks embedded."
    )
    if run.error:
        stdout.write(f"Error: {run.error}")
    for kind in ("failed", "skipped"):
        for item in (run.report or {}).get(kind, []):
            stdout.write(f"  {kind}: {item['url']} ({item['reason']})")
