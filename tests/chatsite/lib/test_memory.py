"""A process gives the memory it freed back to the system (chatsite.lib.memory): measured on a heap that
glibc's malloc keeps after the frees, in a fresh Python process so that nothing else moves its size."""

import os
import subprocess
import sys
import textwrap
import threading

from django.conf import settings

from chatsite.celery import memory_handed_back
from chatsite.lib.memory import start_trimming

# 40,000 blocks of 4 kB (malloc's, not Python's small-object allocator), one in 32 kept: ~155 MB freed
# inside the heap, which free() alone does not give back since kept blocks lie above it.
FRAGMENTED_HEAP = textwrap.dedent(
    """
    import sys, time
    from chatsite.lib.memory import start_trimming

    def rss_mb():
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024

    blocks = [bytes(4000) for _ in range(40_000)]
    kept = blocks[::32]
    del blocks
    freed = rss_mb()
    trimmer = start_trimming(float(sys.argv[1]))
    time.sleep(0.5)
    print(freed, rss_mb(), trimmer.trims if trimmer else -1)
    """
)


def _run(every: float) -> tuple[int, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP, str(every)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(settings.BASE_DIR)},
    )
    assert done.returncode == 0, done.stderr
    freed, after, trims = map(int, done.stdout.split())
    return freed, after, trims


def test_a_process_that_trims_gives_freed_memory_back_and_one_that_does_not_keeps_it():
    freed, after, trims = _run(0.05)
    assert trims >= 2
    assert freed - after > 100, (freed, after)

    freed, after, trims = _run(0)  # the same heap, no trimming: malloc keeps what was freed
    assert trims == -1
    assert freed - after < 20, (freed, after)


def test_trimming_is_off_at_zero_and_stops_when_asked():
    assert start_trimming(0) is None
    trimmer = start_trimming(0.01)
    assert trimmer is not None and trimmer.daemon
    trimmer.stop()
    trimmer.join(timeout=5)
    assert not trimmer.is_alive()


def test_a_worker_process_trims_with_the_setting(settings):
    settings.MALLOC_TRIM_SECONDS = 30
    before = {thread for thread in threading.enumerate() if thread.name == "malloc-trim"}
    memory_handed_back()
    started = [t for t in threading.enumerate() if t.name == "malloc-trim" and t not in before]
    assert len(started) == 1 and started[0].every == 30
    started[0].stop()
    started[0].join(timeout=5)

    settings.MALLOC_TRIM_SECONDS = 0
    memory_handed_back()
    assert {t for t in threading.enumerate() if t.name == "malloc-trim" and t.is_alive()} <= before


def test_the_web_application_trims_as_it_starts():
    code = "import threading, chatsite.asgi; print([t.every for t in threading.enumerate() if t.name == 'malloc-trim'])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
        env={**os.environ, "MALLOC_TRIM_SECONDS": "17"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[17.0]"
