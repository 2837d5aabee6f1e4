"""Work whose task was lost is found again from the database's state (the scale issue's faults): the
reconciler, the crawl run's lease against a duplicate delivery, and no task for a rolled-back transaction."""

import contextlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from ingestion import services
from ingestion.models import CrawlRun, Document
from ingestion.services.reconcile import queued_tasks
from tests.conftest import purge_queues
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queues():
    purge_queues()
    yield
    purge_queues()


def waiting_document() -> Document:
    source = services.source_documents_get_or_create(assistant=make_assistant())
    services.documents_upload(source=source, files=[ContentFile(b"Parcels leave on Tuesdays.", name="note.txt")])
    return Document.objects.get(source=source)


def age(queryset, field: str, seconds: int) -> None:
    queryset.update(**{field: timezone.now() - timedelta(seconds=seconds)})


def test_a_document_whose_task_was_lost_is_queued_again_once(settings):
    settings.RECONCILE_AFTER = 600
    document = waiting_document()  # its task was never sent: the upload's on-commit never ran here
    assert services.lost_work_requeue() == {"documents": 0, "crawls": 0, "archives": 0, "runs_closed": 0}
    age(Document.objects.filter(pk=document.pk), "updated_at", 601)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.lost_work_requeue()["documents"] == 1
    assert queued_tasks("ingest") == 1  # a file: parsed first
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.lost_work_requeue()["documents"] == 0  # its task waits in the queue: not lost


def test_nothing_is_queued_again_while_the_queues_hold_work(settings):
    settings.RECONCILE_AFTER = 600
    document = waiting_document()
    age(Document.objects.filter(pk=document.pk), "updated_at", 601)
    from ingestion.tasks import document_index_task

    document_index_task.delay(document.pk)  # work on its way
    assert services.lost_work_requeue()["documents"] == 0


def test_a_crawl_run_left_queued_is_queued_again(settings):
    settings.RECONCILE_AFTER = 600
    source = services.source_create_website(assistant=make_assistant(), url="https://docs.example.com/")
    run = services.source_crawl_start(source=source)
    age(CrawlRun.objects.filter(pk=run.pk), "heartbeat_at", 601)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.lost_work_requeue()["crawls"] == 1
    assert queued_tasks("ingest") == 1


def test_a_second_delivery_of_a_crawl_stays_out_while_the_first_is_alive_and_takes_over_when_it_died():
    source = services.source_create_website(assistant=make_assistant(), url="https://docs.example.com/")
    run = services.source_crawl_start(source=source)
    assert services.run_begin(run=run, owner="first")
    assert not services.run_begin(run=run, owner="second")  # the same task delivered twice at once
    assert services.run_still_running(run_id=run.pk, owner="first")  # between two pages: alive
    age(CrawlRun.objects.filter(pk=run.pk), "heartbeat_at", 121)  # ... then its worker died
    assert services.run_begin(run=run, owner="second")
    assert not services.run_still_running(run_id=run.pk, owner="first")  # the first stops if it wakes up
    assert CrawlRun.objects.get(pk=run.pk).attempts == 2


def test_a_task_enqueued_in_a_transaction_that_rolls_back_is_never_sent():
    source = services.source_documents_get_or_create(assistant=make_assistant())
    with TestCase.captureOnCommitCallbacks(execute=True), contextlib.suppress(RuntimeError), transaction.atomic():
        services.documents_upload(source=source, files=[ContentFile(b"Never kept.", name="gone.txt")])
        raise RuntimeError("rolled back")
    assert not Document.objects.filter(source=source).exists()
    assert queued_tasks("ingest") == 0 and queued_tasks("embed") == 0
