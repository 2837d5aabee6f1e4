"""A real Celery worker started as a child process (end-to-end tests and ``bench_ingest``), and the web
server's command for the same uses (:func:`web_command`: the tests' live server, ``bench_load``).

The worker runs in its own process group, so that ``kill`` reaches its pool children too, as an
out-of-memory killer or a crash would; its output is appended to a log file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def web_command(port: int, *options: str) -> list[str]:
    """uvicorn serving the product on loopback ``port`` as deployed (``--no-proxy-headers``:
    ``chatsite.lib.clients`` decides whom to believe), without an access log; ``options`` added."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "chatsite.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--no-proxy-headers",
        *options,
    ]


class WorkerProcess:
    def __init__(
        self,
        database_url: str,
        *,
        queues: str = "celery,ingest,embed",
        log_path: Path,
        loglevel: str = "INFO",
        hostname: str = "",
        **env,
    ):
        environment = dict(
            os.environ,
            DATABASE_URL=database_url,
            OUTBOUND_ALLOW_PRIVATE="true",  # the sites and files these workers fetch are served on loopback
            PYTHONUNBUFFERED="1",
            **env,
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.log = log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "chatsite",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            "1",
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if hostname:
            command += ["--hostname", hostname]
        self.process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exited(self) -> int | None:
        """The exit status once the worker has stopped, else None."""
        return self.process.poll()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def children(self) -> list[int]:
        """The process ids of the worker's pool children."""
        pids = []
        for tasks in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            pids += [int(pid) for pid in tasks.read_text().split()]
        return pids

    def kill_child(self) -> list[int]:
        """SIGKILL the pool children only, as an out-of-memory killer picks the largest process: the
        main process lives on, requeues their tasks and starts new children. The ids killed."""
        pids = self.children()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def stop(self, timeout: float = 20) -> None:
        """Ask the worker to finish (SIGTERM), then SIGKILL its group if it has not within ``timeout``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
