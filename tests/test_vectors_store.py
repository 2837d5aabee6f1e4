"""The run's store of computed vectors (tests/vectors.py): what the model computed for a page's texts is
found again by the next test that indexes the same texts, in another process, without the model."""

import subprocess
import sys

import pytest

from ingestion.embedding import Embedder
from ingestion.models import EmbeddingCache
from tests import vectors
from tests.conftest import REPO
from tests.factories import index_pages, make_assistant

pytestmark = pytest.mark.django_db

PAGES = {
    "http://docs.test/returns/": "<html><head><title>Returns</title></head><body><main><h1>Returns</h1>"
    "<p>Any item can be sent back within 30 days of its delivery for a full refund.</p></main></body></html>"
}


def chunk_vectors(assistant) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "select c.embedding::text from ingestion_chunk c join ingestion_document d on d.id = c.document_id"
            " join ingestion_source s on s.id = d.source_id where s.assistant_id = %s order by c.ordinal",
            [assistant.pk],
        )
        return [row[0] for row in cursor.fetchall()]


def test_pages_embedded_once_are_indexed_again_without_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv(vectors.STORE_ENV, str(tmp_path / "vectors.sqlite3"))
    first = make_assistant()
    index_pages(first, PAGES)
    assert stored_sets(tmp_path) == [vectors.TEXTS] and vectors.held(vectors.TEXTS) >= 1

    EmbeddingCache.objects.all().delete()  # as in another test's database
    monkeypatch.setattr(Embedder, "embed_documents", lambda *args, **kwargs: pytest.fail("the model was run"))
    second = make_assistant()
    index_pages(second, PAGES)
    assert chunk_vectors(second) == chunk_vectors(first) != []


def test_another_process_finds_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv(vectors.STORE_ENV, str(tmp_path / "vectors.sqlite3"))
    vectors.keep("drf-site", [("a-model", "abc", "[1,2]")])
    held = subprocess.run(
        [sys.executable, "-c", "from tests import vectors; print(vectors.held('drf-site'))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert held.stdout.strip() == "1"


def stored_sets(folder) -> list[str]:
    import sqlite3

    with sqlite3.connect(folder / "vectors.sqlite3") as store:
        return [row[0] for row in store.execute("select distinct set_name from vectors")]
