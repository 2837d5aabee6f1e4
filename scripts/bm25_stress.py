"""A stress of pg_textsearch's BM25 index: writers that COPY rows into one BM25-indexed table at once, each
transaction with a savepoint rolled back (as Django's nested ``atomic`` blocks do; ``--no-savepoints``:
none), optionally beside a loop that creates, fills and drops another database with a BM25 index. It
reports every error a writer hit. docs/operations.md says why: the pip package's own pg_textsearch 1.0
corrupted its index here; it is the check to run on a new build of the vendored one.

    .venv/bin/python scripts/bm25_stress.py [--seconds 120] [--writers 2] [--no-savepoints] \\
        [--drop-databases] [--host .data/pg] [--user postgres]

(Another server: its socket folder as ``--host``, and ``PGPORT`` for its port.)

It makes the databases ``bm25_stress_a`` (and ``bm25_stress_b``) on the given server, dropping any left
from an earlier run, and drops them at the end. Not a test: the fault, when it comes, comes after
seconds or minutes.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from pathlib import Path

import psycopg

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def connect(options, database: str) -> psycopg.Connection:
    return psycopg.connect(host=options.host, user=options.user, dbname=database, autocommit=True)


def make_database(admin: psycopg.Connection, options, database: str) -> psycopg.Connection:
    admin.execute(f"create database {database}")
    connection = connect(options, database)
    connection.execute("create extension if not exists pg_textsearch")
    connection.execute("create table t (id serial, body text)")
    connection.execute("create index t_bm25 on t using bm25 (body) with (text_config = 'english')")
    return connection


def writer(options, stop: float, errors: list[str], counts: list[int]) -> None:
    connection = connect(options, "bm25_stress_a")
    copies = 0
    try:
        while time.monotonic() < stop:
            with connection.transaction():
                with connection.cursor().copy("copy t (body) from stdin") as copy:
                    for _ in range(20):
                        copy.write_row([" ".join(random.choices(WORDS, k=30))])
                if options.savepoints:
                    with connection.transaction():  # a savepoint, rolled back
                        connection.execute("insert into t (body) values ('rolled back words')")
                        raise psycopg.Rollback()
            copies += 1
    except psycopg.Error as exc:
        errors.append(f"after {copies} copies: {exc}".replace("\n", " "))
    finally:
        counts.append(copies)
        connection.close()


def dropper(admin: psycopg.Connection, options, stop: float, errors: list[str], counts: list[int]) -> None:
    drops = 0
    try:
        while time.monotonic() < stop:
            other = make_database(admin, options, "bm25_stress_b")
            other.execute("insert into t (body) select 'words ' || g from generate_series(1, 200) g")
            other.close()
            admin.execute("drop database bm25_stress_b")
            drops += 1
    except psycopg.Error as exc:
        errors.append(f"dropper after {drops} drops: {exc}".replace("\n", " "))
    finally:
        counts.append(drops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--drop-databases", action="store_true")
    parser.add_argument("--no-savepoints", dest="savepoints", action="store_false")
    parser.add_argument("--host", default=str(Path(__file__).resolve().parent.parent / ".data" / "pg"))
    parser.add_argument("--user", default="postgres")
    options = parser.parse_args()
    admin = connect(options, "postgres")
    for database in ("bm25_stress_a", "bm25_stress_b"):
        admin.execute(f"drop database if exists {database} with (force)")
    make_database(admin, options, "bm25_stress_a").close()
    stop = time.monotonic() + options.seconds
    errors: list[str] = []
    copies: list[int] = []
    drops: list[int] = []
    threads = [threading.Thread(target=writer, args=(options, stop, errors, copies)) for _ in range(options.writers)]
    if options.drop_databases:
        threads.append(threading.Thread(target=dropper, args=(admin, options, stop, errors, drops)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in ("bm25_stress_a", "bm25_stress_b"):
        admin.execute(f"drop database if exists {database} with (force)")
    print(f"copies per writer: {copies}, databases dropped: {sum(drops)}, errors: {len(errors)}")
    for error in errors:
        print(" ", error)


if __name__ == "__main__":
    main()
