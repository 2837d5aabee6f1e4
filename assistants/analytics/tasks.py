"""Celery tasks of analytics: they take ids and dates, call the services, and are safe to run again."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from assistants.analytics import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rollups_refresh_task() -> None:
    """Beat's incremental step: the days changed since the last refresh, recomputed whole; and the gap
    re-checks whose task was lost, queued again."""
    services.rollups_refresh()
    services.gaps_recheck_lost()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rollups_compute_task(start: str, end: str, assistant_ids: list[int] | None = None) -> None:
    """Recompute a date range (ISO dates, inclusive), for the given assistants or all."""
    services.rollups_compute(
        start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end), assistant_ids=assistant_ids
    )


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def question_embed_task(message_id: int) -> None:
    """Embed a visitor question once (nothing to do when it already is) and join it to the nearest topic
    of the latest build (nothing to do when it already has)."""
    services.question_embed(message_id=message_id)
    services.topic_join(message_id=message_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def topic_failures_refresh_task(message_id: int) -> None:
    """An answer stored or rated: its question's topic (if any) counts its unanswered and rated-down
    questions again, and its content gap with them (counted again, not added to)."""
    services.topic_failures_refresh(message_id=message_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def topics_build_task(build_id: int) -> None:
    """Cluster a period's questions into topics and derive the content gaps."""
    services.topics_build(build_id=build_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def topics_rebuild_due_task() -> None:
    """Beat's nightly rebuild of every active assistant's topics."""
    services.topics_rebuild_due()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def gap_recheck_task(gap_id: int, wait_for: list[int] | None = None, attempt: int = 0) -> None:
    """Ask a gap's questions again through the answering pipeline, once the documents in ``wait_for``
    are indexed (retried every 3 s up to RECHECK_WAIT_RETRIES times; then it runs anyway)."""
    from assistants.analytics.recheck import gap_ask_again
    from ingestion.models import Document

    if wait_for and attempt < services.RECHECK_WAIT_RETRIES:
        if Document.objects.filter(pk__in=wait_for, status=Document.Status.PENDING).exists():
            gap_recheck_task.apply_async((gap_id, wait_for, attempt + 1), countdown=3)
            return
    services.gap_recheck_record(gap_id=gap_id, results=gap_ask_again(gap_id=gap_id))
