"""Celery tasks of analytics: they take ids and dates, call the services, and are safe to run again."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from assistants.analytics import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rollups_refresh_task() -> None:
    """Beat's incremental step: the days changed since the last refresh, recomputed whole."""
    services.rollups_refresh()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rollups_compute_task(start: str, end: str, assistant_ids: list[int] | None = None) -> None:
    """Recompute a date range (ISO dates, inclusive), for the given assistants or all."""
    services.rollups_compute(
        start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end), assistant_ids=assistant_ids
    )
