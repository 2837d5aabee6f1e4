"""A real worker keeps its PostgreSQL connection from task to task (as Django keeps one from request
to request) instead of opening one per task, which Celery's Django fix-up does by default."""

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from ingestion import services
from ingestion.models import CrawlRun, Document
from tests.conftest import wait_for
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)

FILES = 12  # each one task on the ingest queue (parse) and one on the embed queue (index)


def sessions_opened() -> int:
    """Connections ever opened to this database (PostgreSQL counts them in pg_stat_database)."""
    with connection.cursor() as cursor:
        cursor.execute("select pg_stat_clear_snapshot()")
        cursor.execute("select sessions from pg_stat_database where datname = current_database()")
        return cursor.fetchone()[0]


def test_a_worker_reuses_its_database_connection_across_tasks(celery_worker_process):
    assistant = make_assistant(make_team(make_user()))
    source = services.source_documents_get_or_create(assistant=assistant)
    warm_up = services.documents_upload(source=source, files=[ContentFile(b"Warm-up text.", name="warm.txt")])
    wait_for(lambda: CrawlRun.objects.get(pk=warm_up.pk).status == "done", timeout=300, message="warm-up indexed")

    before = sessions_opened()
    files = [
        ContentFile(f"Note {n}: parcels to island {n} leave on Tuesdays.".encode(), name=f"note-{n}.txt")
        for n in range(FILES)
    ]
    run = services.documents_upload(source=source, files=files)
    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == "done", timeout=300, message="notes indexed")
    opened = sessions_opened() - before

    assert Document.objects.filter(source=source, status="ready").count() == FILES + 1
    # 2 x FILES tasks ran; a connection per task would be 24 or more.
    assert opened <= 3, f"{opened} connections opened for {2 * FILES} tasks"

    # A kept connection that the server dropped meanwhile is replaced, not used (health checks).
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'"
        )
        assert cursor.fetchone()[0] >= 1
    again = services.documents_upload(source=source, files=[ContentFile(b"After the restart.", name="after.txt")])
    wait_for(lambda: CrawlRun.objects.get(pk=again.pk).status == "done", timeout=300, message="indexed after")
    assert Document.objects.get(source=source, file_name="after.txt").status == "ready"
