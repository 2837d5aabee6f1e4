"""Freed memory handed back to the system, so a long-lived process's resident size follows what it uses.

glibc's malloc keeps what a process frees for its later allocations and gives back to the system only the
free space at the top of a heap. A web process runs each request's synchronous part in a thread of its
own, across several malloc arenas, so its resident size rose with each new peak of concurrent requests
and stayed there although its live memory was flat: at 100 visitors, ~3 MB a minute after a 20-minute
soak's warm-up, while tracemalloc found the Python heap of a web process flat (337 → 341 → 336 MB over 18
minutes at 30 visitors). ``malloc_trim(0)`` also gives back the free pages inside the heaps: called every
45 s in a web process at 100 visitors it released 22–161 MB (median 84) each time, in 3–19 ms (median 8;
the process's other threads wait to allocate meanwhile), and the resident size stayed flat
(docs/benchmarks.md). Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function


_malloc_trim = _load_malloc_trim()


def trim() -> bool:
    """Give the free pages of every malloc arena back to the system; False where that cannot be done."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


class Trimmer(threading.Thread):
    """A daemon thread that trims every ``every`` seconds until ``stop()``."""

    def __init__(self, every: float):
        super().__init__(name="malloc-trim", daemon=True)
        self.every = every
        self.trims = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                trim()
            except Exception:  # never let a trim take the process down
                logger.exception("malloc_trim failed")
                return
            self.trims += 1

    def stop(self) -> None:
        self._stopped.set()


def start_trimming(every: float) -> Trimmer | None:
    """Trim every ``every`` seconds in a daemon thread of this process (settings.MALLOC_TRIM_SECONDS); None
    when ``every`` is 0 or the C library cannot trim."""
    if every <= 0 or _malloc_trim is None:
        return None
    trimmer = Trimmer(every)
    trimmer.start()
    return trimmer
