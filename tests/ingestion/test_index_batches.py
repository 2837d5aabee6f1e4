"""An indexing task embeds its document together with the other documents of its assistant that wait
for embedding, in one call; their own tasks then have nothing to do. A batch whose task stopped (a
killed worker) is finished one document at a time on its redelivery, so a document that kills the
worker ends failed alone; a document that fails, changes or disappears meanwhile does not spoil the
others."""

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.models import CrawlRun, Document, Source
from ingestion.services import indexing
from ingestion.tasks import document_index_task
from tests.factories import make_assistant
from tests.ingestion.embedding.tiny_models import save_model

pytestmark = pytest.mark.django_db

TOPICS = ["opening hours", "returns", "gift cards", "parking", "delivery"]


def count_embedding_calls(monkeypatch, embedder) -> list[int]:
    """The number of texts of each embedding call of ``embedder`` (the real model still runs)."""
    calls = []
    original = embedder.embed_documents

    def counting(texts, *args, **kwargs):
        calls.append(len(texts))
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "embed_documents", counting)
    return calls


@pytest.fixture
def embed_calls(monkeypatch):
    return count_embedding_calls(monkeypatch, get_embedder(""))


def pending_pages(assistant, count: int = 3, tag: str = "") -> list[Document]:
    """Crawled pages waiting for embedding, as a crawl leaves them (their tasks not run yet)."""
    source = Source.objects.create(assistant=assistant, url="https://shop.test/", name="shop")
    run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.INDEXING)
    pages = []
    for index, topic in enumerate(TOPICS[:count]):
        sections = [
            {
                "heading_path": [topic.title()],
                "anchor": "",
                "text": f"{tag}All about {topic}: page {index} of the shop's help.",
            }
        ]
        pages.append(
            Document.objects.create(
                source=source,
                url=f"https://shop.test/{index}/",
                title=topic.title(),
                sections=sections,
                last_run=run,
                content_hash=services.sections_hash(topic.title(), sections),
            )
        )
    return pages


def chunk_texts(document) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("select text from ingestion_chunk where document_id = %s order by ordinal", [document.pk])
        return [row[0] for row in cursor.fetchall()]


def refreshed(documents):
    return [Document.objects.get(pk=document.pk) for document in documents]


def test_one_task_embeds_the_waiting_documents_of_its_assistant_in_one_call(embed_calls):
    assistant = make_assistant()
    first, second, third = pending_pages(assistant)
    upload = services.documents_upload(  # not parsed yet: it waits for the ingest queue, not taken
        source=services.source_documents_get_or_create(assistant=assistant),
        files=[ContentFile(b"# Hours\n\nOpen at nine.", name="hours.md")],
    ).documents.get()
    elsewhere = pending_pages(make_assistant(), count=1)[0]  # another assistant's page: never in the batch

    document_index_task(first.pk)

    assert embed_calls == [3]  # three pages, one call
    for page in refreshed([first, second, third]):
        assert page.status == "ready" and page.chunk_count == 1 and page.claimed_by is None and page.attempts == 1
        assert chunk_texts(page)[0].startswith("All about")
    assert (
        Document.objects.get(pk=upload.pk).status == "pending" and Document.objects.get(pk=upload.pk).claimed_by is None
    )
    assert Document.objects.get(pk=elsewhere.pk).status == "pending" and chunk_texts(elsewhere) == []
    assert CrawlRun.objects.get(pk=first.last_run_id).status == "done"  # the run closes when its pages are in

    document_index_task(second.pk)  # its own task comes later: nothing left to do
    document_index_task(third.pk)
    assert embed_calls == [3] and Document.objects.get(pk=second.pk).attempts == 1


def test_the_batch_is_capped_in_documents_and_text(embed_calls, monkeypatch):
    monkeypatch.setattr(indexing, "BATCH_MAX_DOCUMENTS", 2)
    assistant = make_assistant()
    pages = pending_pages(assistant, count=5)
    document_index_task(pages[0].pk)
    assert [page.status for page in refreshed(pages)] == ["ready", "ready", "pending", "pending", "pending"]

    monkeypatch.setattr(indexing, "BATCH_MAX_CHARS", 1)  # the task's own document always goes
    document_index_task(pages[2].pk)
    assert [page.status for page in refreshed(pages)] == ["ready", "ready", "ready", "pending", "pending"]
    assert embed_calls == [2, 1]


def test_a_document_too_large_to_join_does_not_stop_the_next_ones_from_joining(embed_calls, monkeypatch):
    assistant = make_assistant()
    first, large, third = pending_pages(assistant)
    sections = [{"heading_path": ["Large"], "anchor": "", "text": "A long page about everything. " * 400}]
    Document.objects.filter(pk=large.pk).update(sections=sections)
    monkeypatch.setattr(indexing, "BATCH_MAX_CHARS", 5000)

    document_index_task(first.pk)

    assert [page.status for page in refreshed([first, large, third])] == ["ready", "pending", "ready"]
    assert embed_calls == [2]


def test_a_task_whose_batch_is_held_by_another_does_nothing_and_the_redelivery_finishes_it(embed_calls):
    assistant = make_assistant()
    first, second, third = pending_pages(assistant)
    batch = services.documents_index_claim(document_id=first.pk)  # the first delivery claims, then is killed
    assert [d.pk for d in batch.documents] == [first.pk, second.pk, third.pk] and not batch.one_by_one

    document_index_task(second.pk)  # held by the first task's batch
    assert embed_calls == [] and Document.objects.get(pk=second.pk).claimed_by == first.pk

    document_index_task(first.pk)  # the redelivered task: one by one, each on its own attempt
    assert embed_calls == [1, 1, 1]
    assert [(page.status, page.attempts, page.claimed_by) for page in refreshed([first, second, third])] == [
        ("ready", 2, None),
        ("ready", 2, None),
        ("ready", 2, None),
    ]


def test_a_task_whose_document_another_batch_holds_costs_one_query(embed_calls):
    """Most indexing tasks of a crawl find their page already in a batch: they read one row, without
    its sections, and leave the rest (and closing the run) to the batch's task."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assistant = make_assistant()
    first, second, _ = pending_pages(assistant)
    services.documents_index_claim(document_id=first.pk)
    with CaptureQueriesContext(connection) as queries:
        document_index_task(second.pk)
    assert len(queries) == 1 and '"sections"' not in queries[0]["sql"]
    assert embed_calls == [] and Document.objects.get(pk=second.pk).claimed_by == first.pk


def test_a_task_whose_document_a_batch_indexed_reads_three_rows_and_locks_nothing(embed_calls):
    """The rest of a crawl's tasks run after the batch that took their page: nothing pending, nothing
    held, their run not waiting for indexing; they neither lock rows nor open a transaction."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assistant = make_assistant()
    first, second, _ = pending_pages(assistant)
    CrawlRun.objects.filter(pk=first.last_run_id).update(status=CrawlRun.Status.RUNNING)  # still crawling
    document_index_task(first.pk)
    assert Document.objects.get(pk=second.pk).status == "ready" and len(embed_calls) == 1
    with CaptureQueriesContext(connection) as queries:
        document_index_task(second.pk)
    assert len(queries) == 3, [query["sql"] for query in queries]
    assert not any("FOR UPDATE" in query["sql"] or "SAVEPOINT" in query["sql"] for query in queries)
    assert len(embed_calls) == 1 and CrawlRun.objects.get(pk=first.last_run_id).status == "running"

    # Once the crawl is over and waits for indexing, such a task does close the run.
    CrawlRun.objects.filter(pk=first.last_run_id).update(status=CrawlRun.Status.INDEXING)
    document_index_task(second.pk)
    assert CrawlRun.objects.get(pk=first.last_run_id).status == "done"


def test_a_document_that_kills_the_worker_ends_failed_alone(embed_calls):
    assistant = make_assistant()
    leader, innocent, poison, last = pending_pages(assistant, count=4)
    services.documents_index_claim(document_id=leader.pk)  # delivery 1 claimed all four and was killed
    # Deliveries 2 and 3 went one by one: the leader and the next were indexed, then the poison killed
    # the worker twice (once each).
    for document in (leader, innocent):
        services.documents_index(documents=[Document.objects.get(pk=document.pk)])
    Document.objects.filter(pk=poison.pk).update(attempts=3)

    document_index_task(leader.pk)  # delivery 4

    poison = Document.objects.get(pk=poison.pk)
    assert poison.status == "failed" and "stopped its worker 3 times" in poison.error and chunk_texts(poison) == []
    last = Document.objects.get(pk=last.pk)
    assert last.status == "ready" and last.attempts == 2 and chunk_texts(last)


def test_a_document_that_fails_in_the_batch_fails_alone_with_its_reason(embed_calls):
    assistant = make_assistant()
    good, broken, other = pending_pages(assistant)
    Document.objects.filter(pk=broken.pk).update(sections=[{"heading_path": ["Odd"], "text": {"not": "text"}}])

    document_index_task(good.pk)

    good, broken, other = refreshed([good, broken, other])
    assert broken.status == "failed" and broken.error.startswith("indexing failed:")
    assert good.status == other.status == "ready" and chunk_texts(good) and chunk_texts(other)


def test_a_document_changed_or_deleted_while_its_batch_runs_is_left_to_its_new_task(embed_calls):
    assistant = make_assistant()
    leader, changed, deleted = pending_pages(assistant)
    batch = services.documents_index_claim(document_id=leader.pk)

    run = CrawlRun.objects.get(pk=changed.last_run_id)
    new_sections = [{"heading_path": ["Returns"], "anchor": "", "text": "Returns now take sixty days."}]
    assert services.document_store(run=run, url=changed.url, title="Returns", sections=new_sections)  # a recrawl
    Document.objects.filter(pk=deleted.pk).delete()
    services.documents_index_batch(batch=batch)  # holds the old content of `changed`

    changed = Document.objects.get(pk=changed.pk)
    assert changed.status == "pending" and changed.claimed_by is None and chunk_texts(changed) == []
    assert chunk_texts(deleted) == []  # no chunks for a document that is gone
    document_index_task(changed.pk)  # the task the recrawl queued
    assert chunk_texts(Document.objects.get(pk=changed.pk)) == ["Returns now take sixty days."]
    assert Document.objects.get(pk=leader.pk).status == "ready"


def test_switching_models_embeds_the_documents_in_batches(monkeypatch, tmp_path):
    monkeypatch.setattr(indexing, "BATCH_MAX_DOCUMENTS", 2)
    assistant = make_assistant()
    pages = pending_pages(assistant, count=5)
    for page in pages:
        services.document_index(document=page)
    tiny = str(save_model("bert", tmp_path / "tiny-bert"))
    calls = count_embedding_calls(monkeypatch, get_embedder(tiny))

    space = services.space_switch_start(assistant=assistant, model_name=tiny)
    services.space_build(space=space)

    assert calls == [2, 2, 1]
    with connection.cursor() as cursor:
        cursor.execute(f"select count(*) from {space.partition_name}")
        assert cursor.fetchone()[0] == 5
