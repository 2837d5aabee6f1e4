"""Settings for the test suite: the real services, on a Redis database of their own so that
tests never share queues with a `make run` on the same machine.

Under pytest-xdist (`make test` runs two processes) each test process takes its own Redis database
(15, 14, ...) as well as its own PostgreSQL test database (pytest-django's `test_chatsite_gw0`, ...): their
Celery queues and rate-limit windows never meet. The processes they start (uvicorn, Celery workers) inherit
the environment, and so the same database.
"""

import os
import re
import tempfile


def redis_url_moved(url: str, by: int) -> str:
    """``url`` on the Redis database ``by`` above its own, modulo 16 (a unix:// URL names its database as
    ?db=N, a redis:// URL as its path)."""
    if re.search(r"[?&]db=\d+", url):
        return re.sub(r"([?&]db=)(\d+)", lambda match: f"{match[1]}{(int(match[2]) + by) % 16}", url)
    base, _, database = url.rpartition("/")
    return f"{base}/{(int(database or 0) + by) % 16}"


os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
# The n-th test process takes the database n below the one given (15 by default), once: the processes it
# starts inherit both its PYTEST_XDIST_WORKER and its REDIS_URL, already moved.
if _worker and os.environ.get("CHATSITE_TEST_REDIS_WORKER") != _worker:
    os.environ["REDIS_URL"] = redis_url_moved(os.environ["REDIS_URL"], -int(_worker[2:]))
    os.environ["CHATSITE_TEST_REDIS_WORKER"] = _worker

from chatsite.settings import *  # noqa: E402, F403 - after the test environment is set

# PBKDF2's 1,000,000 iterations are the point in production and only cost time here (229 hashes took
# 110 s of a test run). Processes the tests start (uvicorn, Celery workers) inherit this settings module.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The tests build tiny random-weight models in pytest's temporary folders.
MODEL_ROOT = tempfile.gettempdir()

# Django's test client builds a new handler, and with it a new WhiteNoise middleware, for every client:
# listing every static file through the finders cost ~25 ms each time (a fifth of the dashboard tests' time).
# Looking a file up when it is asked for serves the same files with the same headers.
WHITENOISE_AUTOREFRESH = True

# After a test whose rows were committed, the tables are emptied with DELETE instead of one TRUNCATE of
# every table (~11 ms against ~220 ms a test): tests/postgresql/base.py.
DATABASES["default"]["ENGINE"] = "tests.postgresql"  # noqa: F405
