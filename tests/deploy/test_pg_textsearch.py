"""The BM25 extension is the vendored pg_textsearch (vendor/pg_textsearch), built into the embedded server's
binaries by ``make install`` (scripts/build_pg_textsearch.sh): the package's own 1.0 corrupts its index
under concurrent writers (docs/operations.md). A server started before a new build is restarted, and
``migrate`` brings a database's extension to the build's version; one already current is left alone."""

import os
import re
import time

import psycopg
import pytest
from django.db import connection
from pgserver.utils import PostmasterInfo

from chatsite.db import embedded_database_url, stop_if_older_than
from chatsite.dbserver import preload_libraries, preloaded_library_files
from ingestion.signals import extensions_updated
from tests.conftest import REPO
from tests.factories import index_pages, make_assistant

VENDORED = re.search(
    r"default_version = '([^']+)'", (REPO / "vendor/pg_textsearch/pg_textsearch.control").read_text()
).group(1)


def bm25_indexes() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select c.relname, c.relfilenode from pg_class c join pg_am a on a.oid = c.relam"
            " where a.amname = 'bm25' and c.relkind = 'i'"
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db
def test_the_server_runs_the_vendored_build_and_the_database_has_its_version():
    assert tuple(map(int, VENDORED.split("."))) >= (
        1,
        3,
    )  # the first release whose memtable is out of shared memory (upstream #375)
    with connection.cursor() as cursor:
        cursor.execute(
            "select extversion, current_setting('pg_textsearch.library_version', true) from pg_extension"
            " where extname = 'pg_textsearch'"
        )
        assert cursor.fetchone() == (VENDORED, VENDORED)


@pytest.mark.django_db
def test_migrate_leaves_a_current_extension_and_its_indexes_alone_and_a_flush_does_nothing(
    django_assert_num_queries,
):
    index_pages(make_assistant(), {"https://example.org/a": "<h1>Rates</h1><p>Throttling limits requests.</p>"})
    before = bm25_indexes()
    assert before  # the assistant's partition has its own
    extensions_updated(sender=None, plan=[])  # as after `migrate`
    assert bm25_indexes() == before  # not rebuilt
    with django_assert_num_queries(0):
        extensions_updated(sender=None)  # as after `flush`: no plan


def running(datadir) -> bool:
    info = PostmasterInfo.read_from_pgdata(datadir)
    return info is not None and info.is_running()


def touched(path, seconds_from_now: float):
    stamp = time.time() + seconds_from_now
    os.utime(path, (stamp, stamp))
    return path


@pytest.mark.slow  # two server starts
def test_a_server_started_before_its_preloaded_library_changed_is_restarted(tmp_path):
    datadir = tmp_path / "pg"
    url = embedded_database_url(datadir, "scratch")
    pid = (datadir / "postmaster.pid").read_text().split()[0]
    library = tmp_path / "pg_textsearch.so"
    library.touch()
    try:
        assert not stop_if_older_than(datadir, [touched(library, -3600)])  # built before the server started
        assert running(datadir)
        assert stop_if_older_than(datadir, [touched(library, 60)])  # built since
        assert not running(datadir)
        assert not stop_if_older_than(datadir, [library])  # nothing to stop

        assert embedded_database_url(datadir, "scratch") == url  # started again, with the libraries of now
        assert (datadir / "postmaster.pid").read_text().split()[0] != pid
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_setting('pg_textsearch.library_version')").fetchone() == (VENDORED,)
        assert [path.name for path in preloaded_library_files()] == ["pg_textsearch.so"]
        assert preload_libraries() == ["pg_textsearch"]
        assert not stop_if_older_than(datadir, preloaded_library_files())
    finally:
        stop_if_older_than(datadir, [touched(library, 60)])
