"""Celery tasks of the assistants app: they take ids and call the services."""

from __future__ import annotations

from celery import shared_task

from assistants.golden import services as golden_services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def golden_run_task(run_id: int) -> None:
    """Evaluate an assistant's retrieval on its golden set (reads only: safe to run again)."""
    golden_services.golden_run_execute(run_id=run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def assistant_calibrate_task(assistant_id: int) -> None:
    """Learn the assistant's "I don't know" gate from its content and golden set (safe to run again)."""
    golden_services.assistant_calibrate(assistant_id=assistant_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=90, time_limit=120)
def handoff_summarize_task(handoff_id: int) -> None:
    """Write a handoff's summary with the assistant's model (the extractive one stays if it fails;
    running again writes it again)."""
    from assistants.handoff import summary

    summary.handoff_summarize(handoff_id=handoff_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def handoff_visitor_email_task(conversation_id: int) -> None:
    """Email a visitor who left the team's replies they have not seen (nothing when there are none)."""
    from assistants.handoff import emails

    emails.visitor_replies_send(conversation_id=conversation_id)
