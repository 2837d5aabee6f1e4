"""A file is downloaded and parsed on the ``ingest`` queue, then chunked and embedded on ``embed``;
text that needs no parsing (pages, Q&A) goes straight to ``embed``. So an embedding (GPU) worker
only embeds while other workers parse the next files."""

import base64
import json
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile

from ingestion import services
from ingestion.models import Document
from ingestion.tasks import document_index_task, document_prepare_task
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db


def broker():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queued(queue: str) -> list[tuple[str, int]]:
    """(task name, document id) of each message waiting in a Redis queue (a list under its name)."""
    out = []
    for raw in broker().lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        out.append((message["headers"]["task"], args[0]))
    return out


@pytest.fixture
def empty_queues():
    broker().delete("ingest", "embed")
    yield
    broker().delete("ingest", "embed")


def test_files_go_to_the_ingest_queue_and_text_straight_to_embed(empty_queues, django_capture_on_commit_callbacks):
    assistant = make_assistant()
    source = services.source_documents_get_or_create(assistant=assistant)
    with django_capture_on_commit_callbacks(execute=True):
        services.documents_upload(source=source, files=[ContentFile(b"# Hours\n\nOpen at nine.", name="hours.md")])
        qa = services.qa_add(assistant=assistant, question="When do you open?", answer="At nine.")
    upload = Document.objects.get(file_name="hours.md")
    assert queued("ingest") == [("ingestion.tasks.document_prepare_task", upload.pk)]
    assert queued("embed") == [("ingestion.tasks.document_index_task", qa.pk)]

    document_prepare_task(upload.pk)  # parsed here; its embedding is queued for an embedding worker
    upload.refresh_from_db()
    assert upload.status == "pending" and "nine" in upload.sections[0]["text"] and upload.content_hash
    assert sorted(queued("embed")) == [("ingestion.tasks.document_index_task", pk) for pk in sorted([qa.pk, upload.pk])]

    document_index_task(upload.pk)
    upload.refresh_from_db()
    assert upload.status == "ready" and upload.chunk_count == 1 and upload.attempts == 1


def test_an_embedding_task_for_an_unparsed_file_hands_it_to_the_ingest_queue(empty_queues):
    source = services.source_documents_get_or_create(assistant=make_assistant())
    services.documents_upload(source=source, files=[ContentFile(b"Open at nine.", name="hours.txt")])
    upload = Document.objects.get(file_name="hours.txt")

    document_index_task(upload.pk)  # queued by an older release, before its file was parsed

    upload.refresh_from_db()
    assert upload.status == "pending" and upload.attempts == 0  # not counted as an indexing attempt
    assert queued("ingest") == [("ingestion.tasks.document_prepare_task", upload.pk)]


def test_a_file_without_text_is_parsed_once_and_ends_ready_saying_so(eager_tasks, empty_queues):
    source = services.source_documents_get_or_create(assistant=make_assistant())
    run = services.documents_upload(source=source, files=[ContentFile(b"   \n\n  \n", name="blank.txt")])
    blank = Document.objects.get(file_name="blank.txt")

    document_prepare_task(blank.pk)  # the embedding step runs at once; an unparsed file would loop back

    blank.refresh_from_db()
    assert (blank.status, blank.chunk_count, blank.error) == ("ready", 0, "no text to index")
    assert blank.warnings == ["no text found in the file"] and not queued("ingest")
    run.refresh_from_db()
    assert run.status == "done"


def test_reindexing_a_file_parses_it_again(eager_tasks, empty_queues, django_capture_on_commit_callbacks):
    source = services.source_documents_get_or_create(assistant=make_assistant())
    services.documents_upload(source=source, files=[ContentFile(b"Open at nine.", name="hours.txt")])
    upload = Document.objects.get(file_name="hours.txt")
    document_prepare_task(upload.pk)
    upload.refresh_from_db()
    assert upload.status == "ready"
    (Path(settings.MEDIA_ROOT) / upload.file_path).write_text("Open at ten.")  # the parser reads the stored file

    with django_capture_on_commit_callbacks(execute=True):
        services.document_reindex(document=upload)

    upload.refresh_from_db()
    assert upload.status == "ready" and upload.sections[0]["text"] == "Open at ten."
