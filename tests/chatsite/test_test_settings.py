"""Under pytest-xdist each test process moves to a Redis database of its own, once: the processes it starts
(Celery workers, uvicorn, the SSRF suite's namespace agent) inherit its environment and must land on the
same database, or a worker listens on a queue nobody sends to."""

import os
import subprocess
import sys

READ = "import os, chatsite.test_settings; print(os.environ['REDIS_URL'])"
SPAWN = (
    READ
    + "; import subprocess, sys; print(subprocess.run([sys.executable, '-c', {read!r}], capture_output=True, text=True, check=True).stdout)"
)


def _run(worker: str, redis_url: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CHATSITE_TEST_REDIS_WORKER"}}
    env.update(PYTEST_XDIST_WORKER=worker, REDIS_URL=redis_url)
    code = SPAWN.format(read=READ)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_test_process_and_the_processes_it_starts_share_one_database():
    assert _run("gw1", "redis://127.0.0.1:6379/15") == ["redis://127.0.0.1:6379/14"] * 2
    assert _run("gw0", "redis://127.0.0.1:6379/15") == ["redis://127.0.0.1:6379/15"] * 2


def test_a_unix_socket_url_moves_its_db_parameter():
    assert _run("gw2", "unix:///tmp/chatsite/redis.sock?db=15") == ["unix:///tmp/chatsite/redis.sock?db=13"] * 2
