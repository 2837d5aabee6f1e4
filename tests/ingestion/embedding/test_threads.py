"""CPU threads: each process of a prefork worker embeds on its share of the cores, less the cores
other processes keep busy."""

import multiprocessing
import os
import time
from types import SimpleNamespace

import pytest

from chatsite.celery import POOL_PROCESSES_ENV, share_the_cores
from ingestion.embedding.cores import CoreShare
from ingestion.embedding.engine import cpu_threads


@pytest.fixture
def cores(monkeypatch):
    monkeypatch.delenv(POOL_PROCESSES_ENV, raising=False)
    monkeypatch.delenv("WEB_PROCESSES", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    yield
    os.environ.pop(POOL_PROCESSES_ENV, None)


@pytest.mark.parametrize(
    "pool, concurrency, threads",
    [
        ("prefork", 1, 8),
        ("prefork", 2, 4),
        ("prefork", 3, 2),
        ("prefork", 16, 1),
        ("celery.concurrency.prefork:TaskPool", 4, 2),
        ("solo", 4, 8),
        ("threads", 4, 8),
    ],
)
def test_a_prefork_worker_shares_the_cores_between_its_processes(cores, pool, concurrency, threads):
    assert cpu_threads() == 8  # outside a worker: every core
    share_the_cores(sender=SimpleNamespace(pool_cls=pool, concurrency=concurrency))
    assert cpu_threads() == threads


@pytest.mark.parametrize("processes, threads", [("1", 8), ("2", 4), ("8", 1), ("16", 1)])
def test_the_web_servers_processes_share_the_cores(cores, monkeypatch, processes, threads):
    monkeypatch.setenv("WEB_PROCESSES", processes)
    assert cpu_threads() == threads


def test_a_celery_pool_counts_its_own_processes_even_with_web_processes_set(cores, monkeypatch):
    monkeypatch.setenv("WEB_PROCESSES", "2")
    share_the_cores(sender=SimpleNamespace(pool_cls="prefork", concurrency=8))
    assert cpu_threads() == 1


def stat_file(path, busy_ticks: tuple[int, ...]) -> None:
    """A /proc/stat with one line per CPU: ``busy_ticks`` of user time each, a fixed idle count."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{n} {busy} 0 0 1000 0 0 0 0 0 0" for n, busy in enumerate(busy_ticks)]
    path.write_text("\n".join(lines) + "\nintr 0\n")


def test_the_model_leaves_a_core_that_another_process_keeps_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    tick = 1 / os.sysconf("SC_CLK_TCK")
    stat = tmp_path / "stat"
    stat_file(stat, (0, 0))
    share = CoreShare(2, stat_path=str(stat))
    time.sleep(0.2)
    stat_file(stat, (round(0.2 / tick), 0))  # someone else kept cpu0 busy for the whole 0.2 s
    assert share.threads() == 1
    time.sleep(0.2)
    cpu0 = round(0.2 / tick) + round(0.05 / tick)
    stat_file(stat, (cpu0, 0))  # a quarter of a core: not enough to leave it
    assert share.threads() == 2
    assert share.threads() == 2  # a window too short to measure keeps the last answer
    stat_file(stat, (cpu0, 0, 10**6))  # a CPU this process may not run on is not counted
    time.sleep(0.1)
    assert share.threads() == 2
    (tmp_path / "stat").unlink()
    assert CoreShare(2, stat_path=str(stat)).threads() == 2  # no /proc/stat: the fixed share


def burn(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_a_cpu_model_runs_fewer_threads_beside_a_busy_process():
    """Real /proc/stat, a real busy process, the real model: two threads would stall at every operation."""
    import torch

    from ingestion.embedding.engine import Embedder

    adaptive, fixed = Embedder("", threads=2), Embedder("", threads=2, adapt_threads=False)
    texts = ["Throttling limits the rate of requests that clients can make to an API."] * 64
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=burn, args=(stop,))
    before = torch.get_num_threads()
    busy.start()
    try:
        time.sleep(0.5)
        fixed.embed_documents(texts, batch_tokens=256)
        assert torch.get_num_threads() == 2
        adaptive.embed_documents(texts, batch_tokens=256)
        assert torch.get_num_threads() == 1
    finally:
        stop.set()
        busy.join()
        torch.set_num_threads(before)
