"""What a web or worker process reports (and warms up) once it has started (``settings.STARTUP_REPORTS``:
dotted paths of functions taking the process's name, so the lower layer names them without importing the
apps)."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def report(process: str, *, background: bool = False) -> None:
    """Run the reports; ``background``: in a thread of their own (uvicorn imports the application inside
    its event loop, where Django refuses database queries), which hands its connections back."""
    if background:
        threading.Thread(target=_report_and_close, args=(process,), name="startup-report", daemon=True).start()
        return
    for path in settings.STARTUP_REPORTS:
        try:
            import_string(path)(process)
        except Exception:  # a report never stops a start
            logger.exception("start-up report %s failed", path)


def _report_and_close(process: str) -> None:
    try:
        report(process)
    finally:
        connections.close_all()
