"""The worker's pool child killed in the middle of indexing, and then the whole worker: after a restart
every uploaded document (real PDF, DOCX and Markdown files among small notes) ends ready with exactly
the chunks a clean run gives them, a zip's files each end as one document (killed while it was being
unpacked), and a model switch ends with every chunk once in the new space and the assistant flipped to
it once — none lost, none doubled (the crawl's own case, webhooks and emails: test_worker_killed.py)."""

import io
import shutil
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import connection
from django.utils import timezone

from ingestion import services
from ingestion.models import CrawlRun, Document, EmbeddingSpace
from ingestion.parsers.detect import TEST_HOOKS_ENV
from ingestion.services.documents import _upload_storage
from ingestion.spaces import space_active
from tests.conftest import SHARED, purge_queues, wait_for
from tests.factories import make_assistant
from tests.ingestion.embedding.tiny_models import save_model

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY = "15"  # seconds before Redis hands an unacknowledged task to another worker
# How often a worker looks for such tasks: every second here, not every 10 s as deployed, so that the
# restarted worker takes the task back as soon as it may (the same path, up to 9 s less waiting per kill).
RESTORE = "1"
DOCS = SHARED / "docs"
REAL_FILES = ("layout-parser-paper-with-table.pdf", "docx-tables.docx", "unstructured-README.md")
WORDS = "refunds parcels couriers invoices warranty repairs lockers vouchers returns deliveries".split()


def text(number: int, sentences: int = 3) -> str:
    """A distinct little page: the number spelled into every sentence, so no two chunks are alike."""
    return " ".join(
        f"Note {number}.{s}: {WORDS[(number + s) % len(WORDS)]} are handled by desk {number * 7 + s} within "
        f"{number % 9 + 1} days, and {WORDS[(number * 3 + s) % len(WORDS)]} follow the same rule."
        for s in range(sentences)
    )


def chunk_keys(space: EmbeddingSpace) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"select document_id, ordinal from {space.partition_name}")
        return cursor.fetchall()


def upload_rows(assistant) -> list[tuple]:
    """Every chunk of the assistant's active space, by file: what a clean run must also produce."""
    space = space_active(assistant.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"select d.file_name, c.ordinal, c.text, c.anchor, c.embedding is not null from {space.partition_name} c"
            " join ingestion_document d on d.id = c.document_id",
        )
        return sorted(cursor.fetchall())


_sweeps = {"next": 0.0}


def reconcile_now_and_then() -> bool:
    """Beat's reconciler, every 30 s of the wait, as if RECONCILE_AFTER had passed: a task that Redis lost
    in a kill (taken from its queue, not yet noted as unacknowledged) is queued again from the database's
    state, as in production. It queues nothing while tasks are still queued, so it never doubles work."""
    if time.monotonic() >= _sweeps["next"]:
        _sweeps["next"] = time.monotonic() + 30
        services.lost_work_requeue(now=timezone.now() + timedelta(seconds=settings.RECONCILE_AFTER + 1))
    return False


def upload(assistant, count: int):
    """Real documents (a paper in PDF, tables in DOCX, a README) and ``count`` small notes, in one upload."""
    source = services.source_documents_get_or_create(assistant=assistant)
    files = [File((DOCS / name).open("rb"), name=name) for name in REAL_FILES]
    files += [ContentFile(text(n).encode(), name=f"note-{n:02d}.md") for n in range(count)]
    try:
        services.documents_upload(source=source, files=files)
    finally:
        for file in files[: len(REAL_FILES)]:
            file.close()
    return source


def test_uploads_end_indexed_exactly_once_after_the_pool_child_and_then_the_worker_are_killed(start_worker):
    interrupted = make_assistant()
    worker = start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    count = 24 + len(REAL_FILES)
    source = upload(interrupted, count - len(REAL_FILES))
    ready = Document.objects.filter(source=source, status="ready")
    wait_for(lambda: ready.count() >= 2, timeout=300, interval=0.1, message="the first files indexed")
    assert worker.kill_child(), "the worker had no pool child"
    at_first_kill = ready.count()
    wait_for(lambda: ready.count() > at_first_kill, timeout=120, interval=0.1, message="work after the child died")
    worker.kill()
    assert ready.count() < count, "the kills missed the indexing"

    start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    wait_for(
        lambda: ready.count() == count or reconcile_now_and_then(),
        timeout=400,
        message="every file indexed after the restart",
    )
    keys = chunk_keys(space_active(interrupted.pk))
    assert len(keys) == len(set(keys)), "doubled chunks"
    documents = list(Document.objects.filter(source=source))
    assert sum(d.chunk_count for d in documents) == len(keys) and all(d.chunk_count >= 1 for d in documents)
    assert sorted(d for d, _ in set(keys)) == sorted(d.pk for d in documents for _ in range(d.chunk_count))

    clean = make_assistant()
    clean_source = upload(clean, count - len(REAL_FILES))
    clean_ready = Document.objects.filter(source=clean_source, status="ready")
    wait_for(lambda: clean_ready.count() == count, timeout=400, message="the clean run")
    interrupted_rows, clean_rows = upload_rows(interrupted), upload_rows(clean)
    assert len({row[0] for row in clean_rows}) == count and len(clean_rows) > 2 * count
    assert all(row[4] for row in interrupted_rows), "a chunk without its vector"
    assert interrupted_rows == clean_rows


def slow_zip(count: int) -> tuple[bytes, dict[str, bytes]]:
    """A zip of the real files and ``count`` notes, in folders, that the sandbox unpacks slowly (its test
    hook, with CHATSITE_PARSER_TEST_HOOKS=1: a pause before each member); and each file's bytes by name."""
    members = {name: (DOCS / name).read_bytes() for name in REAL_FILES}
    members |= {f"note-{n:02d}.md": text(n).encode() for n in range(count)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = b"x-test-slow"
        for n, (name, data) in enumerate(members.items()):
            archive.writestr(f"folder-{n % 3}/{name}", data)
    return buffer.getvalue(), members


def test_a_zip_ends_with_each_file_once_after_the_pool_child_and_then_the_worker_are_killed_while_unpacking(
    start_worker,
):
    assistant = make_assistant()
    source = services.source_documents_get_or_create(assistant=assistant)
    shutil.rmtree(_upload_storage(source))  # an earlier run's files: its database gave this source's id too
    archive, members = slow_zip(12)
    worker = start_worker(
        CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE, **{TEST_HOOKS_ENV: "1"}
    )
    run = services.documents_upload_zip(source=source, archive=ContentFile(archive, name="handbook.zip"))
    media = Path(settings.MEDIA_ROOT)
    stored_zip, folder = media / run.report["archive"], _upload_storage(source) / f"unpacked-{run.pk}"
    files = lambda: {path.name for path in folder.glob("*")} if folder.is_dir() else set()  # noqa: E731

    wait_for(lambda: len(files()) >= 2, timeout=120, interval=0.05, message="the unpacking under way")
    assert worker.kill_child(), "the worker had no pool child"
    first = files()
    # the task comes back to the worker's new child, which unpacks again from the start, into a fresh folder
    wait_for(lambda: len(files() - first) >= 2, timeout=60, interval=0.05, message="the unpacking again")
    worker.kill()
    run.refresh_from_db()
    assert run.status == CrawlRun.Status.RUNNING and not source.documents.exists(), "the kills missed the unpacking"

    start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE, **{TEST_HOOKS_ENV: "1"})
    ready = Document.objects.filter(source=source, status="ready")
    wait_for(
        lambda: ready.count() == len(members) or reconcile_now_and_then(),
        timeout=400,
        message="every file of the zip indexed after the restart",
    )
    documents = list(Document.objects.filter(source=source))
    assert sorted(d.file_name for d in documents) == sorted(members)  # each file once, none lost
    for document in documents:  # each whole: no attempt cut short wrote a part of it
        assert (media / document.file_path).read_bytes() == members[document.file_name]
    # what the killed attempts wrote is gone: the folder holds the documents' files and nothing else
    assert files() == {Path(d.file_path).name for d in documents}
    keys = chunk_keys(space_active(assistant.pk))
    assert len(keys) == len(set(keys)) == sum(d.chunk_count for d in documents)
    assert all(d.chunk_count >= 1 for d in documents)
    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == CrawlRun.Status.DONE, timeout=60, message="the run done")
    assert CrawlRun.objects.get(pk=run.pk).pages_found == len(members)
    assert not stored_zip.exists()  # the uploaded zip, deleted once its files were documents


def test_a_model_switch_ends_with_every_chunk_once_after_the_pool_child_and_then_the_worker_are_killed(
    start_worker, tmp_path
):
    assistant = make_assistant()
    target = space_active(assistant.pk).model_name  # the bundled model: slow enough to be caught mid-way
    tiny = str(save_model("bert", tmp_path / "tiny-bert"))
    services.space_build(space=services.space_switch_start(assistant=assistant, model_name=tiny))
    source = services.source_documents_get_or_create(assistant=assistant)
    count = 256
    pages = [
        Document.objects.create(
            source=source,
            url=f"https://shop.test/{n}/",
            title=f"Note {n}",
            sections=[{"heading_path": [f"Note {n}"], "anchor": "", "text": text(n)}],
            content_hash=f"hash-{n}",
        )
        for n in range(count)
    ]
    services.documents_index(documents=pages)  # with the tiny model, here
    expected = sorted(chunk_keys(space_active(assistant.pk)))
    assert len(expected) >= count

    purge_queues()  # the calibrations the set-up queued: not this test's concern
    worker = start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    space = services.space_switch_start(assistant=assistant, model_name=target)
    built = lambda: len(chunk_keys(space))  # noqa: E731
    wait_for(lambda: built() >= 64, timeout=300, interval=0.1, message="the switch under way")
    assert worker.kill_child(), "the worker had no pool child"
    at_first_kill = built()
    wait_for(lambda: built() > at_first_kill, timeout=120, interval=0.1, message="the switch resumed by the worker")
    worker.kill()
    space.refresh_from_db()
    assert space.status == EmbeddingSpace.Status.BUILDING and built() < len(expected), "the kills missed the switch"

    start_worker(CELERY_VISIBILITY_TIMEOUT=VISIBILITY, CELERY_RESTORE_INTERVAL=RESTORE)
    wait_for(
        lambda: EmbeddingSpace.objects.get(pk=space.pk).status == EmbeddingSpace.Status.ACTIVE,
        timeout=400,
        message="the switch to finish after the restart",
    )
    assert sorted(chunk_keys(space)) == expected  # every chunk once: none lost, none doubled
    with connection.cursor() as cursor:
        cursor.execute(f"select count(*) from {space.partition_name} where embedding is null")
        assert cursor.fetchone()[0] == 0, "a chunk without its vector"
    # flipped once: the new space is the assistant's only one, the old dropped with its chunks (the worker
    # drops it just after the flip commits, so the flip can be seen a moment before the drop)
    spaces = lambda: list(EmbeddingSpace.objects.filter(assistant=assistant).values_list("pk", "status"))  # noqa: E731
    wait_for(lambda: len(spaces()) == 1, timeout=60, message="the old space dropped after the flip")
    assert spaces() == [(space.pk, EmbeddingSpace.Status.ACTIVE)]
