"""The near side of the SSRF suite: starts :mod:`tests.security.agent` in a network namespace of
its own and hands it scenarios to run.

``unshare --user --map-root-user --net`` gives the agent a network with nothing in it but a
loopback interface, on which it puts the "private" and "metadata" addresses (10.0.0.1,
169.254.169.254, ...) and one "public" address, and serves sentinels and a hostile site on them.
The product's code runs in the agent too, so a sentinel is really reachable whenever a defence
fails, and nothing the tests send can leave the namespace.

The agent reaches the test run's real Redis and PostgreSQL through :class:`UnixRelay`: a Unix socket
in a folder both sides see, copied byte for byte to the real server (network namespaces do not
separate Unix sockets, but the database's own socket folder is closed to the namespace's root).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]


class UnixRelay:
    """Listens on the Unix socket ``path`` and copies each connection to ``target`` (a Unix socket
    path, or ``(host, port)``), in both directions, until either side closes."""

    def __init__(self, path: str, target: str | tuple[str, int]):
        self.path, self.target = path, target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name=f"relay {path}").start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.connect(self.target)
        return upstream

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            a.close()
            b.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


class NamespaceAgent:
    """The agent process in its own network namespace; :meth:`run` runs one scenario there."""

    def __init__(self, database: dict, redis_url: str):
        if shutil.which("unshare") is None or shutil.which("ip") is None:
            raise RuntimeError("the SSRF suite needs unshare (util-linux) and ip (iproute2)")
        self.folder = tempfile.mkdtemp(prefix="chatsite-netns-")
        os.chmod(self.folder, 0o700)
        self.relays = []
        redis = urlparse(redis_url)
        redis_socket = f"{self.folder}/redis.sock"
        self.relays.append(UnixRelay(redis_socket, (redis.hostname or "127.0.0.1", redis.port or 6379)))
        database_host = database["HOST"]
        if database_host.startswith("/"):
            target = f"{database_host}/.s.PGSQL.{database['PORT'] or 5432}"
        else:
            target = (database_host or "127.0.0.1", int(database["PORT"] or 5432))
        self.relays.append(UnixRelay(f"{self.folder}/.s.PGSQL.5432", target))
        redis_db = (redis.path or "/0").strip("/") or "0"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.test_settings",
            "DATABASE_URL": f"postgresql://{database['USER']}:{database['PASSWORD']}@/{database['NAME']}?host={self.folder}",
            "REDIS_URL": f"unix://{redis_socket}?db={redis_db}",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
        for name in ("OUTBOUND_ALLOWED_HOSTS", "OUTBOUND_ALLOW_PRIVATE", "LLM_BASE_URL", "EMBEDDING_API_BASE_URL"):
            environment.pop(name, None)
        self.log_path = Path(self.folder) / "agent.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", "--", sys.executable, "-m", "tests.security.agent"],
            cwd=REPO,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.ready = self._read(timeout=120)
        if not self.ready.get("ready"):
            raise RuntimeError(f"the namespace agent did not start: {self.ready}\n{self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")

    def _read(self, timeout: float) -> dict:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(timeout):
                raise TimeoutError(f"the namespace agent said nothing for {timeout:.0f} s\n{self.log_tail()}")
        finally:
            selector.close()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the namespace agent exited ({self.process.poll()})\n{self.log_tail()}")
        return json.loads(line)

    def run(
        self,
        scenario: str,
        *,
        timeout: float = 60,
        settings: dict | None = None,
        routes: dict | None = None,
        patch: dict | None = None,
        **params,
    ) -> dict:
        """Run ``scenario`` in the namespace with ``params``, Django ``settings`` overrides, module
        constants to ``patch`` and the hostile site's ``routes`` (see the agent). Its report:
        ``result`` or ``error`` (and ``traceback``), ``hits`` per sentinel, ``site`` (the requests
        the hostile site saw), ``seconds`` and ``growth_mib`` (peak RSS growth)."""
        command = {
            "scenario": scenario,
            "params": params,
            "settings": settings or {},
            "routes": routes or {},
            "patch": patch or {},
        }
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()
        report = self._read(timeout)
        if "crash" in report:
            raise AssertionError(f"scenario {scenario} crashed the agent's runner: {report['crash']}")
        return report

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.stdin.close()
                self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        for relay in self.relays:
            relay.close()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
