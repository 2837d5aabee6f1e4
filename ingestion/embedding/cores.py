"""How many threads a CPU model should run now: its share of the cores, less those others keep busy.

PyTorch splits each operation of a forward pass across its threads and waits for the slowest. When
another process wants one of those cores (the ingest worker parsing, PostgreSQL updating its
indexes, the web server answering), the thread that shares a core stalls every operation, and the
model runs slower on two threads than it would on one. Measured with MiniLM on 2 cores, 300 chunks:
2 threads alone 11-13 s, 1 thread alone 18.4 s; beside one always-busy process, 2 threads 25.8-28.1 s
and 1 thread 18.0-19.7 s (while the other process gets a whole core instead of a third); beside a
process busy half the time (50 ms on, 50 ms off), 2 threads 15.3 s and 1 thread 22.8 s.

So before each batch the engine asks ``CoreShare.threads()``: each core's worth of time that other
processes kept the CPUs of this process's CPU set busy since the last batch (``/proc/stat``), beyond
``BUSY_CORE`` of a core, is taken off its share. Where ``/proc/stat`` cannot be read the share is
fixed.
"""

from __future__ import annotations

import math
import os
import time

BUSY_CORE = 0.55  # a core others kept busy more than this share of the time is left to them
MIN_WINDOW = 0.05  # seconds: shorter windows are added to the next one (the kernel counts in 10 ms ticks)


class CoreShare:
    def __init__(self, most: int, *, stat_path: str = "/proc/stat"):
        self.most = max(1, most)
        self.stat_path = stat_path
        self.tick = 1 / os.sysconf("SC_CLK_TCK")
        self.cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
        self.current = self.most
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall clock, busy seconds of our CPUs, this process's CPU seconds), or None if unreadable."""
        try:
            with open(self.stat_path) as stat:
                lines = stat.read().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, _, counters = line.partition(" ")
            if name in self.cpus:
                # user nice system idle iowait irq softirq steal (guest time is inside user)
                fields = [int(value) for value in counters.split()[:8]]
                busy += sum(fields) - fields[3] - fields[4]
        return time.monotonic(), busy * self.tick, time.process_time()

    def others_busy(self, before: tuple[float, float, float], now: tuple[float, float, float]) -> float:
        """Cores that other processes kept busy between two samples."""
        wall = now[0] - before[0]
        return max(0.0, (now[1] - before[1]) - (now[2] - before[2])) / wall

    def threads(self) -> int:
        """The thread count for the next batch."""
        if self.most == 1 or self._last is None:
            return self.most
        now = self._sample()
        if now is None or now[0] - self._last[0] < MIN_WINDOW:
            return self.current
        busy = self.others_busy(self._last, now)
        self._last = now
        self.current = max(1, self.most - math.floor(busy + 1 - BUSY_CORE))
        return self.current
