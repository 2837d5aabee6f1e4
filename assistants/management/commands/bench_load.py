"""``bench_load``: many visitors at once against the web processes as deployed (``make bench-load``).

Three parts on this machine's loopback: a fake language model (``assistants.loadtest.fake_model``: the
OpenAI streaming format, ``--ttft`` to the first token, then ``--rate`` tokens a second, ``--tokens`` in an
answer; it counts requests and the streams whose client went away), the product's web processes as
``make run`` starts them (uvicorn with ``--workers``, the real database and Redis), and an open-loop load
generator in this process (``assistants.loadtest.visitor``, on uvloop: what it spends, the server on the
same cores lacks): questions arrive at a fixed rate, whatever the server does, each from a new visitor on
a connection of its own who reads the streamed answer to its end — or, for ``--leave`` of them (10%),
leaves in the middle. A step of C concurrent visitors sends C / D questions a second, D being an
answer's length (ttft + tokens / rate), so that about C answers stream at once.

Per step it prints the questions sent, the errors (a status other than 200, an error event, a stream that
broke or timed out), the time to the first token (p50/p95/p99), the server's overhead (the first token
minus the model's own ttft), the departures and how many of them the model saw cancelled, the web
processes' memory and the database connections in use (their most). ``--soak S`` then holds
``--soak-visitors`` for S seconds and samples the memory every 30 s. The content is the first
``--pages`` pages of a static site (the DRF documentation by default) in a temporary team removed after.
Not a timed test: a benchmark.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import uvloop
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone

from assistants.loadtest.visitor import visit
from assistants.management.commands.bench_chat import QUESTIONS
from assistants.management.commands.evaluate_retrieval import remove
from assistants.services import assistant_create, team_create
from chatsite.celery import app
from chatsite.db import database_url
from chatsite.env import shared_data_dir
from chatsite.worker_process import web_command
from ingestion import services
from ingestion.models import CrawlRun, EmbeddingCache
from ingestion.parsers.html import extract_page


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise CommandError(f"{url} did not come up in {timeout:.0f} s")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers), in MiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return round(total / 1024, 1)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process and its children have used so far, in seconds."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            # utime, stime (fields 14 and 15), and cutime, cstime: children that ended (PostgreSQL's backends)
            total += sum(int(value) for value in fields[11:15]) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


class Command(BaseCommand):
    help = "Open-loop load on the web processes as deployed: errors, first-token times, cancellations, memory, connections."

    def add_arguments(self, parser):
        parser.add_argument("--steps", default="25,50,100,200,300", help="Concurrent visitors of each step.")
        parser.add_argument("--step-seconds", type=float, default=30.0)
        parser.add_argument("--ttft", type=float, default=0.3, help="The fake model's seconds to the first token.")
        parser.add_argument("--rate", type=float, default=20.0, help="Its tokens per second.")
        parser.add_argument("--tokens", type=int, default=200, help="Tokens in one of its answers.")
        parser.add_argument("--leave", type=float, default=0.1, help="Share of visitors who leave mid-answer.")
        parser.add_argument("--web-processes", type=int, default=os.cpu_count() or 2)
        parser.add_argument("--pages", type=int, default=20)
        parser.add_argument("--site", default=str(shared_data_dir(Path(settings.BASE_DIR)) / "sites" / "drf"))
        parser.add_argument("--soak", type=float, default=0.0, help="Seconds of a final soak (0: none).")
        parser.add_argument("--soak-visitors", type=int, default=100)
        parser.add_argument("--out", help="Write the figures as JSON here too.")

    def handle(self, *args, **options):
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per eager task otherwise
        self.options = options
        files = sorted(Path(options["site"]).rglob("index.html"))[: options["pages"]]
        if not files:
            raise CommandError(f"no index.html pages under {options['site']}")
        label = f"bench-load-{timezone.now():%Y%m%d-%H%M%S}"
        owner = User.objects.create_user(username=label)
        team = team_create(name=label, owner=owner)
        started_at = timezone.now()
        processes: list[subprocess.Popen] = []
        try:
            assistant = assistant_create(team=team, name=label)
            self._index(assistant, files, Path(options["site"]))
            model_port, web_port = free_port(), free_port()
            processes.append(model := self._start_model(model_port))
            self.model_pid = model.pid
            web = self._start_web(web_port, model_port)
            processes.append(web)
            base = f"http://127.0.0.1:{web_port}"
            wait_until_up(f"http://127.0.0.1:{model_port}/stats", 30)
            wait_until_up(f"{base}/help/", 120)
            self.model_stats = f"http://127.0.0.1:{model_port}/stats"
            self.database_pid = self._database_pid()
            self.web_port = web_port
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the generator's own CPU, lower
                report = runner.run(self._run(assistant.slug, web.pid))
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
            EmbeddingCache.objects.filter(created_at__gte=started_at).delete()
            remove(team, owner)
        if options["out"]:
            Path(options["out"]).write_text(json.dumps(report, indent=2))

    # --- set-up ---------------------------------------------------------------------------------

    def _index(self, assistant, files: list[Path], root: Path) -> None:
        source = services.source_create_website(assistant=assistant, url="http://docs.test/")
        run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.RUNNING)
        eager, app.conf.task_always_eager = app.conf.task_always_eager, True
        try:
            for path in files:
                url = f"http://docs.test/{path.parent.relative_to(root).as_posix()}/".replace("/./", "/")
                page = extract_page(path.read_text(errors="replace"), url)
                services.document_store(
                    run=run, url=url, title=page.title, sections=[s.as_dict() for s in page.sections]
                )
        finally:
            app.conf.task_always_eager = eager

    def _start_model(self, port: int) -> subprocess.Popen:
        o = self.options
        command = [
            sys.executable,
            "-m",
            "assistants.loadtest.fake_model",
            "--port",
            str(port),
            "--ttft",
            str(o["ttft"]),
            "--rate",
            str(o["rate"]),
            "--tokens",
            str(o["tokens"]),
        ]
        return subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)

    def _start_web(self, port: int, model_port: int) -> subprocess.Popen:
        """The web processes as `make run` starts them, on this database and Redis, answering with the fake
        model; the per-address limits are off (every visitor here comes from 127.0.0.1)."""
        env = dict(
            os.environ,
            DATABASE_URL=database_url(connection.settings_dict),
            LLM_PROVIDER="openai",
            LLM_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
            LLM_MODEL="load",
            LLM_API_KEY="load",
            CHAT_RATE_ADDRESS="0",
            CHAT_RATE_ASSISTANT="0",
            STREAMS_PER_ASSISTANT="0",
            ALLOWED_HOSTS="127.0.0.1",
            WEB_PROCESSES=str(self.options["web_processes"]),
            LOG_LEVEL="WARNING",
        )
        command = web_command(port, "--workers", str(self.options["web_processes"]), "--log-level", "warning")
        return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True)

    # --- the load --------------------------------------------------------------------------------

    async def _run(self, slug: str, web_pid: int) -> dict:
        o = self.options
        answer_seconds = o["ttft"] + o["tokens"] / o["rate"]
        steps = []
        await self._visit(slug, answer_seconds, leave=False, results={"ttft": [], "done": 0})  # warm up
        for visitors in [int(step) for step in o["steps"].split(",") if step.strip()]:
            steps.append(await self._step(slug, visitors, o["step_seconds"], answer_seconds, web_pid))
            self._print_step(steps[-1])
        soak = await self._soak(slug, answer_seconds, web_pid) if o["soak"] > 0 else None
        return {
            "steps": steps,
            "soak": soak,
            "answer_seconds": answer_seconds,
            "options": {
                key: o[key] for key in ("ttft", "rate", "tokens", "leave", "web_processes", "pages", "step_seconds")
            },
        }

    async def _step(self, slug: str, visitors: int, seconds: float, answer_seconds: float, web_pid: int) -> dict:
        rate = visitors / answer_seconds  # questions a second that keep `visitors` answers streaming at once
        before = httpx.get(self.model_stats).json()
        cpu_before, own_before, wall_before = tree_cpu_seconds(web_pid), time.process_time(), time.monotonic()
        db_before = tree_cpu_seconds(self.database_pid) if self.database_pid else 0.0
        model_before = tree_cpu_seconds(self.model_pid)
        results = {"ttft": [], "errors": {}, "sent": 0, "departed": 0, "done": 0}
        peaks = {"connections": 0, "rss": 0.0, "streams": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(self._sample(web_pid, peaks, stop))
        visits, begin = [], time.monotonic()
        while (elapsed := time.monotonic() - begin) < seconds:
            due = int(elapsed * rate) + 1 - results["sent"]
            for _ in range(max(due, 0)):
                results["sent"] += 1
                leave = random.random() < self.options["leave"]
                visits.append(asyncio.create_task(self._visit(slug, answer_seconds, leave, results)))
            await asyncio.sleep(max(0.0, (results["sent"] / rate) - (time.monotonic() - begin)))
        await asyncio.gather(*visits)
        stop.set()
        await sampler
        await asyncio.sleep(1.0)  # the model notices the last departures
        after = httpx.get(self.model_stats).json()
        web_cpu, own_cpu = tree_cpu_seconds(web_pid) - cpu_before, time.process_time() - own_before
        db_cpu = tree_cpu_seconds(self.database_pid) - db_before if self.database_pid else None
        model_cpu = tree_cpu_seconds(self.model_pid) - model_before
        wall = time.monotonic() - wall_before
        ttft = results["ttft"]
        requests = after["requests"] - before["requests"]
        return {
            "visitors": visitors,
            "questions_per_second": round(rate, 2),
            "sent": results["sent"],
            "completed": results["done"],
            "errors": sum(results["errors"].values()),
            "error_kinds": results["errors"],
            "ttft_ms": {f"p{q}": percentile(ttft, q) for q in (50, 95, 99)},
            "overhead_ms": {f"p{q}": round(percentile(ttft, q) - self.options["ttft"] * 1000, 1) for q in (50, 95, 99)},
            "departed": results["departed"],
            "cancelled_upstream": after["cancelled"] - before["cancelled"],
            "model_requests": requests,
            # The web processes' CPU per question that reached the model, and the cores they and this
            # load generator kept busy (they share the machine: what the generator takes, the server lacks).
            "web_cpu_ms_per_answer": round(web_cpu * 1000 / requests, 1) if requests else None,
            "web_cores_busy": round(web_cpu / wall, 2),
            "database_cpu_ms_per_answer": round(db_cpu * 1000 / requests, 1)
            if requests and db_cpu is not None
            else None,
            "generator_cores_busy": round(own_cpu / wall, 2),
            "model_cores_busy": round(model_cpu / wall, 2),
            "web_rss_mb_peak": peaks["rss"],
            "db_connections_peak": peaks["connections"],
            "open_streams_peak": peaks["streams"],
        }

    async def _sample(self, web_pid: int, peaks: dict, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient() as stats:
            while not stop.is_set():
                peaks["rss"] = max(peaks["rss"], tree_rss_mb(web_pid))
                peaks["connections"] = max(peaks["connections"], await asyncio.to_thread(self._connections))
                peaks["streams"] = max(peaks["streams"], (await stats.get(self.model_stats)).json()["open"])
                await asyncio.sleep(0.5)

    @staticmethod
    def _database_pid() -> int | None:
        """The PostgreSQL server's process, when it runs on this machine (its data directory readable here)."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("show data_directory")  # superusers and pg_read_all_settings only
                folder = Path(cursor.fetchone()[0])
            return int((folder / "postmaster.pid").read_text().split()[0])
        except (DatabaseError, OSError, IndexError, ValueError):
            return None

    @staticmethod
    def _connections() -> int:
        """Connections to this database, this process's own left out."""
        from django.db import connection as own

        with own.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
                " and backend_type = 'client backend'"
            )
            return cursor.fetchone()[0]

    async def _visit(self, slug: str, answer_seconds: float, leave: bool, results: dict) -> None:
        """One visitor: a question, its answer streamed to the end (or left in the middle)."""
        token = secrets.token_urlsafe(24)
        body = json.dumps({"question": random.choice(QUESTIONS)}).encode()
        leave_after = self.options["ttft"] + random.uniform(0.2, 0.6) * (answer_seconds - self.options["ttft"])
        seen = await visit(
            "127.0.0.1",
            self.web_port,
            f"/a/{slug}/chat",
            body,
            headers={"Cookie": f"cs_visitor={token}"},
            leave_after=leave_after if leave else None,
            timeout=answer_seconds + 60,
        )
        if seen.first_token is not None:
            results["ttft"].append(seen.first_token * 1000)
        if seen.outcome == "done":
            results["done"] += 1
        elif seen.outcome == "departed":
            results["departed"] += 1
        else:
            self._error(results, seen.outcome)

    @staticmethod
    def _error(results: dict, kind: str) -> None:
        if "errors" in results:
            results["errors"][kind] = results["errors"].get(kind, 0) + 1

    async def _soak(self, slug: str, answer_seconds: float, web_pid: int) -> dict:
        """``--soak-visitors`` for ``--soak`` seconds; memory sampled every 30 s (flat is the goal)."""
        samples, step_seconds = [], 30.0
        rounds = max(1, int(self.options["soak"] // step_seconds))
        errors, kinds, sent = 0, Counter(), 0
        for _ in range(rounds):
            step = await self._step(slug, self.options["soak_visitors"], step_seconds, answer_seconds, web_pid)
            errors += step["errors"]
            kinds.update(step["error_kinds"])
            sent += step["sent"]
            samples.append(tree_rss_mb(web_pid))
        self.stdout.write(
            f"soak: {self.options['soak_visitors']} visitors for {rounds * step_seconds:.0f} s, "
            f"{errors} errors of {sent} {dict(kinds) or ''}, web memory every 30 s (MiB): {samples}"
        )
        return {
            "visitors": self.options["soak_visitors"],
            "seconds": rounds * step_seconds,
            "sent": sent,
            "errors": errors,
            "error_kinds": dict(kinds),
            "rss_mb": samples,
        }

    def _print_step(self, step: dict) -> None:
        self.stdout.write(
            f"{step['visitors']:>4} visitors ({step['questions_per_second']}/s): {step['sent']} sent, "
            f"{step['errors']} errors {step['error_kinds'] or ''}, first token p50/p95/p99 "
            f"{step['ttft_ms']['p50']}/{step['ttft_ms']['p95']}/{step['ttft_ms']['p99']} ms "
            f"(overhead p95 {step['overhead_ms']['p95']} ms), {step['departed']} left, "
            f"{step['cancelled_upstream']} cancelled upstream, web {step['web_rss_mb_peak']} MiB, "
            f"{step['db_connections_peak']} db connections, {step['open_streams_peak']} streams at once, "
            f"web CPU {step['web_cpu_ms_per_answer']} ms an answer ({step['web_cores_busy']} cores busy, "
            f"the generator {step['generator_cores_busy']}, the fake model {step['model_cores_busy']}), PostgreSQL CPU {step['database_cpu_ms_per_answer']} ms an answer"
        )
