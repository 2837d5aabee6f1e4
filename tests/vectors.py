"""Vectors the real model computed once in a test run, for the tests that index the same text again.

The DRF site is crawled and embedded by several tests (the crawl-and-answer and API end-to-end tests,
and the production database server's rerun of them), and a few fixtures index the same pages for every
test. Each would run the model over the same text: about a minute of both cores for the whole site. A
run keeps what the model computed in one store (a SQLite file that the run's processes share: both
pytest processes, the Celery workers they start, the rerun's own pytest), by named set. A test that asks
for a set finds its vectors put in the embedding cache before it starts (the product's own path: a text
whose vector is cached is not embedded again, ``ingestion.services.indexing.embeddings_cached``), and
what the model computed for it is kept for the next. The first test to need a set computes it with the
real model, so every run still embeds the site once. Not for tests that count what is embedded or that
kill a worker while it embeds.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

STORE_ENV = "CHATSITE_TEST_VECTOR_STORE"


def _store() -> sqlite3.Connection | None:
    path = os.environ.get(STORE_ENV)
    if not path:
        return None
    store = sqlite3.connect(path, timeout=120)
    store.execute("pragma journal_mode=wal")
    store.execute(
        "create table if not exists vectors (set_name text, model_name text, text_hash text, embedding text,"
        " primary key (set_name, model_name, text_hash))"
    )
    return store


def cache_seed(set_name: str) -> int:
    """Put the set's kept vectors in the test database's embedding cache; how many the set holds."""
    store = _store()
    if store is None:
        return 0
    with closing(store):
        rows = store.execute(
            "select model_name, text_hash, embedding from vectors where set_name = ?", [set_name]
        ).fetchall()
    return _cached(rows)


def _cached(rows: list) -> int:
    """Put (model, text hash, vector as text) rows in the test database's embedding cache; how many."""
    from django.db import connection

    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                "insert into ingestion_embeddingcache (model_name, text_hash, embedding, created_at)"
                " values (%s, %s, %s::vector, now()) on conflict (model_name, text_hash) do nothing",
                rows,
            )
    return len(rows)


def cache_rows() -> set[tuple[str, str, str]]:
    """What the test database's embedding cache holds: (model, text hash, vector as text)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select model_name, text_hash, embedding::text from ingestion_embeddingcache")
        return set(cursor.fetchall())


def keep(set_name: str, rows) -> None:
    """Keep ``rows`` (as :func:`cache_rows` gives them) in the set, for the run's later tests."""
    store = _store()
    if store is None:
        return
    with closing(store), store:
        store.executemany(
            "insert or ignore into vectors (set_name, model_name, text_hash, embedding) values (?, ?, ?, ?)",
            [(set_name, *row) for row in rows],
        )


TEXTS = "texts"  # vectors by text alone, for the pages tests index (tests.factories.index_pages)


def cache_seed_texts(model_name: str, hashes: list[str]) -> set[str]:
    """Put the kept vectors of these texts (by the embedding cache's key) in the test database's cache;
    the hashes of those that were kept."""
    store = _store()
    if store is None or not hashes:
        return set()
    wanted = sorted(set(hashes))
    with closing(store):
        rows = []
        for first in range(0, len(wanted), 500):  # SQLite's limit on a statement's parameters
            part = wanted[first : first + 500]
            rows += store.execute(
                f"select model_name, text_hash, embedding from vectors where set_name = ? and model_name = ?"
                f" and text_hash in ({', '.join('?' * len(part))})",
                [TEXTS, model_name, *part],
            ).fetchall()
    _cached(rows)
    return {row[1] for row in rows}


def keep_texts(model_name: str, hashes: list[str]) -> None:
    """Keep what the test database's cache holds for these texts, for the run's later tests."""
    from django.db import connection

    if not hashes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "select model_name, text_hash, embedding::text from ingestion_embeddingcache"
            " where model_name = %s and text_hash = any(%s)",
            [model_name, sorted(set(hashes))],
        )
        keep(TEXTS, cursor.fetchall())


def held(set_name: str) -> int:
    store = _store()
    if store is None:
        return 0
    with closing(store):
        return store.execute("select count(*) from vectors where set_name = ?", [set_name]).fetchone()[0]
