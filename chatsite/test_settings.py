"""Settings for the test suite: the real services, on a Redis database of their own so that
tests never share queues with a `make run` on the same machine."""
import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from chatsite.settings import *  # noqa: E402,F401,F403
