"""The database image's server command, run here without Docker: the same script, on a loopback port,
with a password, in a folder of its own. The application migrates onto it and searches with BM25 (its
pg_textsearch) and vectors (pgvector), as it does on the embedded database of development."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import REPO
from tests.deploy.test_pg_textsearch import VENDORED
from tests.servers import free_port

# Retrieval, and the whole path (a real worker crawls a site onto the server, the chat answers from it).
RETRIEVAL_TESTS = ["tests/ingestion/search/test_hybrid.py", "tests/e2e/test_crawl_and_answer.py"]
SERVER = [sys.executable, "chatsite/dbserver.py"]  # the Dockerfile's db target: CMD ["python", "dbserver.py"]

# Run in a subprocess against the server, through the application's own code: what search uses.
CHECK = """
from django.db import connection
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import lexical_backend, space_active
from ingestion.embedding import get_embedder
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant

with connection.cursor() as cursor:
    cursor.execute("select extname from pg_extension order by 1")
    print("extensions", ",".join(row[0] for row in cursor.fetchall()))
    cursor.execute("select extversion from pg_extension where extname = 'pg_textsearch'")
    print("pg_textsearch", cursor.fetchone()[0])
print("backend", lexical_backend())
assistant = make_assistant()
try:
    pages = {f"http://docs.test/{p}/": (DRF_SITE / p / "index.html").read_text()
             for p in ("api-guide/throttling", "api-guide/pagination")}
    index_pages(assistant, pages)
    space = space_active(assistant.pk)
    query = "How do I limit the rate of requests for anonymous users?"
    vector = get_embedder(space.model_name).embed_queries([query])[0]
    for mode in ("lexical", "dense", "hybrid"):
        hits = chunk_search(space=space, query=query, vector=vector, k=3, mode=mode)
        print("top", mode, hits[0].url if hits else "-", ",".join(sorted(hits[0].ranks)) if hits else "")
finally:
    assistant.team.delete()
"""


@dataclass
class Server:
    url: str  # the application's DATABASE_URL
    pgdata: Path  # its socket is there too (the superuser's way in, from this machine only)
    port: int


def server_env(folder: Path, port: int, password_file: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PGDATA": str(folder / "pg"),
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_PASSWORD_FILE": str(password_file),
    }


@pytest.fixture(scope="module")
def dbserver():
    """The server started as the image starts it."""
    folder = Path(tempfile.mkdtemp(prefix="chatsite-dbserver-"))
    port, password = free_port(), secrets.token_urlsafe(16) + "'\"x"  # quotes: the bootstrap SQL must escape them
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    env = server_env(folder, port, password_file)
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(SERVER, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while subprocess.run([*SERVER, "ready"], cwd=REPO, env=env).returncode != 0:  # the health check
            assert server.poll() is None, (folder / "server.log").read_text()
            assert time.monotonic() < deadline, (folder / "server.log").read_text()
            time.sleep(0.5)
        yield Server(f"postgresql://chatsite:{quote(password, safe='')}@127.0.0.1:{port}/chatsite", folder / "pg", port)
    finally:
        server.terminate()  # SIGTERM: PostgreSQL's smart shutdown; nobody is connected by then
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def app(url: str, *args: str) -> subprocess.CompletedProcess:
    """manage.py with production settings and DATABASE_URL on the server (a process of its own)."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env |= {"DJANGO_SETTINGS_MODULE": "chatsite.settings", "DATABASE_URL": url, "DEBUG": "false"}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # over 3 s alone: make test runs it, make test-fast does not
def test_the_image_server_takes_passwords_only_and_the_app_searches_it_with_bm25(dbserver):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dbserver.url.replace("@127.0.0.1", "x@127.0.0.1"), connect_timeout=10).close()
    with psycopg.connect(dbserver.url, connect_timeout=10) as conn:
        role = conn.execute("select rolsuper, rolcreaterole from pg_roles where rolname = current_user").fetchone()
        assert role == (False, False)  # the application's role is no superuser
        assert conn.execute("show password_encryption").fetchone()[0] == "scram-sha-256"

    migrated = app(dbserver.url, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    checked = app(dbserver.url, "shell", "-c", CHECK)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = dict(line.split(" ", 1) for line in checked.stdout.splitlines() if " " in line)
    assert {"vector", "pg_textsearch"} <= set(lines["extensions"].split(","))
    assert lines["pg_textsearch"] == VENDORED  # the vendored build (the role's migrate could not update it)
    assert lines["backend"] == "bm25"  # the BM25 index was created by the migration, as on the embedded server
    out = checked.stdout
    for mode in ("lexical", "dense"):
        assert f"top {mode} http://docs.test/api-guide/throttling/" in out, out
    assert "top hybrid http://docs.test/api-guide/throttling/ dense,lexical" in out, out  # both legs fused


@pytest.mark.slow
def test_the_retrieval_and_end_to_end_tests_pass_against_the_image_server(dbserver):
    """The hybrid retrieval tests and the crawl-and-answer end-to-end tests, run whole against the image's
    server instead of the embedded one."""
    from chatsite.dbserver import bin_dir

    # pytest-django creates a test database: the role may create databases for this run only (granted over
    # the server's socket by its superuser; the application never needs it).
    psql = [str(bin_dir() / "psql"), "-X", "-q", "-h", str(dbserver.pgdata), "-p", str(dbserver.port), "-U", "postgres"]
    subprocess.run([*psql, "-d", "postgres", "-c", "alter role chatsite createdb"], check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["DATABASE_URL"] = dbserver.url
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *RETRIEVAL_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
