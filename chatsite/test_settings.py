"""Settings for the test suite: the real services, on a Redis database of their own so that
tests never share queues with a `make run` on the same machine."""

import os
import tempfile

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from chatsite.settings import *  # noqa: F403

# PBKDF2's 1,000,000 iterations are the point in production and only cost time here (229 hashes took
# 110 s of a test run). Processes the tests start (uvicorn, Celery workers) inherit this settings module.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The tests build tiny random-weight models in pytest's temporary folders.
MODEL_ROOT = tempfile.gettempdir()
