"""Politeness towards the sites we crawl, shared by every crawl on every worker.

One host gets at most ``settings.CRAWL_HOST_CONCURRENCY`` requests at a time and at least ``delay``
seconds between the starts of two requests, however many crawls (sources, teams, workers) reach it.
The slots live in the shared Redis and expire on their own, so a worker killed mid-request does not
hold one forever; Redis's clock decides, so workers on several machines agree.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from django.conf import settings

from chatsite.lib.shared_redis import redis_client

# KEYS: the host's slots (a sorted set of token → expiry, ms) and its next allowed start (ms).
# ARGV: token, concurrency, delay ms, slot lifetime ms. Returns 0 when the slot is taken, else
# the milliseconds to wait before trying again.
_ACQUIRE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.min(100, tonumber(first[2]) - now))
end
local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < next_start then
  return next_start - now
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'PX', math.max(1, tonumber(ARGV[3])))
return 0
"""


class HostGate:
    """``with gate.slot(host, delay):`` around each request to ``host`` (``host[:port]``)."""

    def __init__(self, *, concurrency: int | None = None, slot_seconds: float | None = None):
        self.concurrency = max(1, concurrency or settings.CRAWL_HOST_CONCURRENCY)
        # A slot outlives the longest request (the outbound deadline bounds it, redirects included)
        # and then frees itself.
        longest = max(2 * settings.OUTBOUND_TIMEOUT, settings.OUTBOUND_DEADLINE + 5)
        self.slot_ms = int(1000 * (slot_seconds or longest))
        self._acquire = redis_client().register_script(_ACQUIRE)

    @contextlib.contextmanager
    def slot(self, host: str, delay: float = 0.0):
        slots, next_start = f"crawl:host:{host}:slots", f"crawl:host:{host}:next"
        token = uuid.uuid4().hex
        while wait_ms := int(
            self._acquire(keys=[slots, next_start], args=[token, self.concurrency, int(1000 * delay), self.slot_ms])
        ):
            time.sleep(wait_ms / 1000)
        try:
            yield
        finally:
            redis_client().zrem(slots, token)
