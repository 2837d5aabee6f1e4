"""Session-wide fixtures: the real embedded PostgreSQL and a real Redis, set up once."""
import os

# Tests use their own Redis database and never share queues with a `make run` on the same machine.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DEBUG", "false")
