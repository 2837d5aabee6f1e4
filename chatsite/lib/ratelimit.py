"""Rate limits shared by every process: fixed windows counted in the shared Redis.

A window starts at the first hit of its key (not at a clock minute, which a burst could straddle)
and lasts ``window`` seconds; within it at most ``limit`` hits are allowed. The answer says how long
to wait, for a ``Retry-After`` header.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatsite.lib.shared_redis import redis_client


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after: int  # seconds until the window ends (at least 1)


def hit(key: str, *, limit: int, window: int) -> Verdict:
    """Count one hit of ``key`` (e.g. ``"chat:visitor:<token>"``); allowed while ``count <= limit``."""
    counter = f"rate:{key}"
    pipe = redis_client().pipeline()
    pipe.set(counter, 0, ex=window, nx=True)
    pipe.incr(counter)
    pipe.ttl(counter)
    _, count, ttl = pipe.execute()
    return Verdict(allowed=count <= limit, count=count, retry_after=max(1, ttl if ttl and ttl > 0 else window))


def reset(key: str) -> None:
    """Forget the window of ``key`` (a successful login clears its failures, say)."""
    redis_client().delete(f"rate:{key}")


def peek(key: str, *, limit: int) -> Verdict:
    """The window of ``key`` as it stands, without counting a hit: refused once ``limit`` hits were counted."""
    pipe = redis_client().pipeline()
    pipe.get(f"rate:{key}")
    pipe.ttl(f"rate:{key}")
    count, ttl = pipe.execute()
    count = int(count or 0)
    return Verdict(allowed=count < limit, count=count, retry_after=max(1, ttl if ttl and ttl > 0 else 1))


# Concurrent holders of a resource (streams open at once): a sorted set of holders scored by when their
# hold lapses, so that a process that died holding one frees it by itself after ``ttl`` seconds.
_ACQUIRE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return 1
"""


def acquire(key: str, *, holder: str, limit: int, ttl: int) -> bool:
    """Take one of ``limit`` places of ``key`` for ``holder`` (e.g. a stream's id) for at most ``ttl``
    seconds; False when every place is taken. Release it with :func:`release`."""
    import time

    now = time.time()
    script = redis_client().register_script(_ACQUIRE)
    return bool(script(keys=[f"held:{key}"], args=[now, now + ttl, limit, holder, ttl + 60]))


def release(key: str, *, holder: str) -> None:
    redis_client().zrem(f"held:{key}", holder)
