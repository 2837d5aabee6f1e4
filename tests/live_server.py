"""The app under a real uvicorn process on the test database, for tests that need real connections
(Server-Sent Events across processes, reconnects): ``start_uvicorn`` returns it and its base URL."""

import os
import socket
import subprocess

from chatsite.db import database_url
from chatsite.worker_process import web_command
from tests.conftest import REPO, wait_for
from tests.servers import free_port


def start_uvicorn(log_name: str, port: int | None = None, **env: str) -> tuple[subprocess.Popen, str]:
    """Start the app under uvicorn (on ``port``, or a free one), on the test database unless ``env``
    names another ``DATABASE_URL``, with ``env`` over the test process's environment; its output goes
    to ``test-artifacts/<log_name>``. Returns the process and its base URL once it accepts connections."""
    from django.db import connection

    port = port or free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "LLM_BASE_URL": "",
        "LLM_MODEL": "",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    with open(REPO / "test-artifacts" / log_name, "ab") as log:  # the process keeps its own copy
        process = subprocess.Popen(
            web_command(port, "--timeout-graceful-shutdown", "3"),
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def up():
        assert process.poll() is None, f"uvicorn exited; see test-artifacts/{log_name}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.2, message="uvicorn")
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
