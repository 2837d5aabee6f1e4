"""CPU threads: each process of a prefork worker embeds on its share of the cores."""
import os
from types import SimpleNamespace

import pytest

from chatsite.celery import POOL_PROCESSES_ENV, share_the_cores
from ingestion.embedding.engine import cpu_threads


@pytest.fixture
def cores(monkeypatch):
    monkeypatch.delenv(POOL_PROCESSES_ENV, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    yield
    os.environ.pop(POOL_PROCESSES_ENV, None)


@pytest.mark.parametrize(
    "pool, concurrency, threads",
    [("prefork", 1, 8), ("prefork", 2, 4), ("prefork", 3, 2), ("prefork", 16, 1),
     ("celery.concurrency.prefork:TaskPool", 4, 2), ("solo", 4, 8), ("threads", 4, 8)],
)
def test_a_prefork_worker_shares_the_cores_between_its_processes(cores, pool, concurrency, threads):
    assert cpu_threads() == 8  # outside a worker: every core
    share_the_cores(sender=SimpleNamespace(pool_cls=pool, concurrency=concurrency))
    assert cpu_threads() == threads
