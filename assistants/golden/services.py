"""Writes for the golden set: its questions, and evaluation runs queued for a worker."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from assistants.golden.evaluation import GoldenError, evaluate_golden_set
from assistants.models import Assistant, GoldenQuestion, GoldenRun, Message
from chatsite.lib.urls import page_key
from ingestion.models import Document
from ingestion.services import space_calibrate
from ingestion.spaces import space_active

logger = logging.getLogger(__name__)


GOLDEN_MAX_QUESTIONS = 500
GOLDEN_MAX_PAGES = 10


def golden_question_add(
    *,
    assistant: Assistant,
    question: str,
    expected_urls: list[str],
    origin: str = "team",
    message: Message | None = None,
):
    """Add a question and the pages that answer it to the assistant's golden set.

    Every expected address must be one of the assistant's pages (fragments and a trailing slash
    ignored), so that a typo cannot make a question unanswerable. GoldenError says what is wrong.
    """

    question = " ".join((question or "").split())
    urls = list(dict.fromkeys(url.strip() for url in expected_urls if url.strip()))
    if not question or len(question) > 500:
        raise GoldenError("Enter a question of at most 500 characters.")
    if not urls or len(urls) > GOLDEN_MAX_PAGES:
        raise GoldenError(f"Enter the address of each page that answers it (1 to {GOLDEN_MAX_PAGES}), one per line.")
    known = {
        page_key(url): url for url in Document.objects.filter(source__assistant=assistant).values_list("url", flat=True)
    }
    unknown = [url for url in urls if page_key(url) not in known]
    if unknown:
        raise GoldenError(f"Not a page of this assistant: {', '.join(unknown[:3])}.")
    if GoldenQuestion.objects.filter(assistant=assistant).count() >= GOLDEN_MAX_QUESTIONS:
        raise GoldenError(f"The golden set holds at most {GOLDEN_MAX_QUESTIONS} questions.")
    if GoldenQuestion.objects.filter(assistant=assistant, question=question).exists():
        raise GoldenError("That question is already in the golden set.")
    return GoldenQuestion.objects.create(
        assistant=assistant,
        question=question,
        expected_urls=[known[page_key(url)] for url in urls],
        origin=origin,
        message=message,
    )


def assistant_calibrate(*, assistant_id: int) -> dict:
    """Learn the gate of the assistant's active space from its content, with its golden questions
    as examples of covered questions ({} when it has no indexed content)."""
    space = space_active(assistant_id)
    if space is None:
        return {}
    questions = list(GoldenQuestion.objects.filter(assistant_id=assistant_id).values_list("question", flat=True))
    return space_calibrate(space=space, questions=questions)


def golden_question_delete(*, golden) -> None:
    golden.delete()


def golden_run_start(*, assistant: Assistant):
    """Queue an evaluation of the golden set (or return the one already waiting or running)."""
    from assistants.tasks import golden_run_task

    with transaction.atomic():
        Assistant.objects.select_for_update().filter(pk=assistant.pk).first()  # one start at a time
        active = GoldenRun.objects.filter(
            assistant=assistant, status__in=[GoldenRun.Status.QUEUED, GoldenRun.Status.RUNNING]
        ).first()
        if active is not None:
            return active
        run = GoldenRun.objects.create(assistant=assistant)
        golden_run_task.delay_on_commit(run.pk)
    return run


def golden_run_execute(*, run_id: int) -> None:
    """Evaluate (the task's body): the run ends done with its report, or failed with the reason."""

    updated = GoldenRun.objects.filter(
        pk=run_id,
        status__in=[GoldenRun.Status.QUEUED, GoldenRun.Status.RUNNING],  # running: redelivered
    ).update(status=GoldenRun.Status.RUNNING)
    if not updated:
        return
    run = GoldenRun.objects.select_related("assistant").get(pk=run_id)
    try:
        results, status, error = evaluate_golden_set(run.assistant), GoldenRun.Status.DONE, ""
    except GoldenError as exc:
        results, status, error = {}, GoldenRun.Status.FAILED, str(exc)
    except Exception as exc:  # a bug or an outage: the run says so instead of staying "running"
        logger.exception("golden-set evaluation %s failed", run_id)
        results, status, error = {}, GoldenRun.Status.FAILED, f"the evaluation stopped: {exc}"
    GoldenRun.objects.filter(pk=run_id).update(
        status=status, results=results, error=error[:300], finished_at=timezone.now()
    )
    if status == GoldenRun.Status.DONE:  # the golden questions are examples of covered questions
        from assistants.tasks import assistant_calibrate_task

        transaction.on_commit(lambda: assistant_calibrate_task.delay(run.assistant_id))
