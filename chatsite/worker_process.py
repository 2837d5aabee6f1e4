"""A real Celery worker started as a child process (end-to-end tests and ``bench_ingest``), and the web
server's command for the same uses (:func:`web_command`: the tests' live server, ``bench_load``).

The worker runs in its own process group, so that ``kill`` reaches its pool children too, as an
out-of-memory killer or a crash would; its output is appended to a log file.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

_started = itertools.count(1)


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
        self._log_start = self.log.tell()  # the log is shared: this worker's lines start here
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
        # A name of its own (Celery's default, celery@<host>, is every worker's here): its "ready" line in a
        # log that other workers share is its own.
        self.hostname = hostname or f"worker{os.getpid()}-{next(_started)}@%h"
        command += ["--hostname", self.hostname]
        self.process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the worker says it is ready to take tasks (``<name>@<host> ready.``, at INFO)."""
        name = self.hostname.split("@")[0].encode() + b"@"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                if any(name in line and line.rstrip().endswith(b" ready.") for line in log):
                    return
            if self.exited() is not None:
                raise RuntimeError(f"the worker exited with {self.exited()}: see {self.log_path}")
            time.sleep(0.1)
        raise TimeoutError(f"the worker was not ready within {timeout:.0f} s: see {self.log_path}")

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
