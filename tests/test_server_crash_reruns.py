"""A test that the database server's crash broke runs once more; every other failure fails at once.

Run as a separate pytest over a throwaway folder whose conftest imports this project's own hooks
(``tests/conftest.py``: the items marked, each test process counting its own tests' attempts), so the
real hooks and pytest-rerunfailures decide: in one process, and under xdist."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

CONFTEST = """
from tests.conftest import pytest_collection_modifyitems, pytest_configure, pytest_unconfigure
"""

TESTS = """
import os
from pathlib import Path

import psycopg
from django.db import utils

ATTEMPTS = Path(os.environ["ATTEMPTS_DIR"])


def attempt(name):
    path = ATTEMPTS / name
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


def server_gone():
    try:
        raise psycopg.OperationalError("the connection is closed")
    except psycopg.OperationalError as error:
        raise utils.OperationalError(*error.args) from error


def test_the_server_crashed_once():
    if attempt("once") == 1:
        server_gone()


def test_the_server_crashed_twice():
    server_gone()


def test_a_wrong_answer():
    attempt("wrong")
    assert 1 == 2


def test_attempts_are_counted_in_the_test_process(pytestconfig):
    from pytest_rerunfailures import StatusDB

    assert type(pytestconfig.failures_db) is StatusDB  # under xdist too: no question to the controller


def test_a_constraint():
    attempt("constraint")
    raise utils.IntegrityError("duplicate key value violates unique constraint")
"""


@pytest.mark.parametrize("processes", [["-p", "no:xdist"], ["-n", "2"]], ids=["one process", "xdist"])
def test_only_a_test_that_lost_the_database_server_runs_once_more(tmp_path, processes):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "conftest.py").write_text(CONFTEST)
    (tmp_path / "suite" / "test_suite.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "attempts").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:django", *processes, "-rA", "suite"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "ATTEMPTS_DIR": str(tmp_path / "attempts")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout.splitlines()[-1]
    assert "3 failed, 2 passed, 2 rerun" in summary, summary  # the twice-crashed one ran twice, then failed
    assert "PASSED suite/test_suite.py::test_the_server_crashed_once" in result.stdout
    assert "FAILED suite/test_suite.py::test_the_server_crashed_twice" in result.stdout
    attempts = {path.name: int(path.read_text()) for path in (tmp_path / "attempts").iterdir()}
    assert attempts == {"once": 2, "wrong": 1, "constraint": 1}
