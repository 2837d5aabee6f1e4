"""The Redis that every process shares (``settings.REDIS_URL``, also the Celery broker): one client
per URL and process, for rate limits, idempotency keys and the crawlers' per-host slots."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis:
    return _redis_for(settings.REDIS_URL)
