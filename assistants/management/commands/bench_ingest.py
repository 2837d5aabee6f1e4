"""``bench_ingest``: the ingestion pipeline end to end, against embedding alone (``make bench-ingest``).

Crawls a static site served on loopback (default: the Django REST framework documentation,
``sites/drf/`` in the shared evaluation data, see ``chatsite.env.shared_data_dir``) and uploads a
folder of documents (default: ``docs/`` there) into an isolated, temporary team and assistant
through the real services and tasks — crawler, extraction, download and parsing in the sandbox,
chunking, embedding, storage.

By default the tasks run as deployed, with an embedding worker of their own (the GPU layout of
docker-compose): two real Celery worker processes on a broker database of the bench's own, one on
the ``ingest`` queue (crawls, downloads, parsing), one on ``embed`` (chunking, embedding, storing),
concurrency 1 each, warmed up (model loaded, one document indexed) before the clock starts; the
clock stops when the crawl and the uploads are indexed. Overlap pays most where embedding does not
need the CPU (a GPU); on a 2-core CPU the two workers compete for the same cores. ``--eager`` runs
every task in this process instead, one after the other (Celery eager mode: the same task code, no
overlap, each page embedded as it is stored), and also says how much of the time was spent inside
the embedding model.

Then it embeds the very chunk texts that were stored, each distinct text once (as the pipeline's
embedding cache does), alone, in one call with the engine's batching (twice; the faster run counts,
so noise on this shared machine cannot flatter the ratio), and prints
pages/s, chunks/s and the pipeline efficiency: end-to-end seconds divided by the seconds of
embedding alone, measured in the same run (goal ≤ 1.25). Embedding-cache rows the run wrote are
removed afterwards so that runs are repeatable, and the temporary team is deleted.

``--rounds N`` runs the pipeline N times (each on a new assistant, the embedding cache emptied
between rounds) and prints each round's efficiency and the median. From the second round on, a
round's baseline is the mean of the embedding-alone measurement just before it (the previous
round's) and the one after it: this machine's speed drifts by up to 20% within minutes, and a
baseline taken only afterwards favours or penalises the round by the drift.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from assistants.management.commands.evaluate_retrieval import remove
from assistants.services import assistant_create, team_create
from chatsite.celery import app
from chatsite.db import database_url
from chatsite.env import shared_data_dir
from chatsite.worker_process import WorkerProcess
from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.models import CrawlRun, Document, EmbeddingCache
from ingestion.spaces import space_active

SHARED = shared_data_dir(Path(settings.BASE_DIR))
BENCH_BROKER_DB = 11  # the workers' queues live in a Redis database of their own
FINISHED = (CrawlRun.Status.DONE, CrawlRun.Status.FAILED)
POLL_SECONDS = 0.5


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Stopwatch:
    """Adds up the seconds an embedder spends in ``embed_documents`` until stopped."""

    def __init__(self, embedder):
        self.seconds = 0.0
        self._embedder, self._original = embedder, embedder.embed_documents

        def timed(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - begin

        embedder.embed_documents = timed

    def stop(self) -> None:
        self._embedder.embed_documents = self._original


class _Workers:
    """One real Celery worker per queue, on this database and the bench's broker; stopped at the end."""

    def __init__(self, broker_url: str, queues: tuple[str, ...] = ("ingest", "embed")):
        self.log_path = settings.DATA_DIR / "bench-ingest-workers.log"
        self.workers = [
            WorkerProcess(
                database_url(connection.settings_dict),
                queues=queue,
                log_path=self.log_path,
                loglevel="WARNING",
                hostname=f"bench-{queue}@%h",
                REDIS_URL=broker_url,
            )
            for queue in queues
        ]

    def check(self) -> None:
        for worker in self.workers:
            if (status := worker.exited()) is not None:
                raise CommandError(f"a bench worker exited ({status}); see {self.log_path}")

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=30)


def bench_broker_url() -> str:
    """The Redis server of REDIS_URL, database BENCH_BROKER_DB (apart from ``make run``'s queues)."""
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{BENCH_BROKER_DB}"))


def _use_broker(url: str) -> None:
    """Send this process's tasks to ``url`` (possible only before it has connected to a broker)."""
    if app.conf.broker_url == url:
        return
    if app._pool is not None:
        raise CommandError("this process has already connected to another broker; run the bench on its own")
    app.conf.broker_url = url


def _empty_queues(url: str) -> None:
    import redis

    redis.Redis.from_url(url).delete("ingest", "embed")


def _wait(runs: list[CrawlRun], begin: float, workers: _Workers, timeout: float = 3600) -> dict[int, float]:
    """Seconds from ``begin`` (``time.time()``) until each run finished, as its worker recorded it
    (``finished_at``), so the bench can look only every POLL_SECONDS without erring by as much. Its
    queries every 50 ms took CPU from the pipeline it measures: 3.1 s of this process's and ~0.9 s of
    PostgreSQL's in a 90-second run (0.4 s and 0.8 s in all when looking every 0.5 s)."""
    pending, finished = {run.pk for run in runs}, {}
    while pending:
        done = CrawlRun.objects.filter(pk__in=pending, status__in=FINISHED).values_list("pk", "finished_at")
        for pk, finished_at in done:
            finished[pk] = (finished_at.timestamp() if finished_at else time.time()) - begin
            pending.discard(pk)
        if pending and time.time() - begin > timeout:
            raise CommandError(f"the pipeline did not finish in {timeout:.0f} s; see {workers.log_path}")
        workers.check()
        if pending:
            time.sleep(POLL_SECONDS)
    return finished


def _upload(assistant, files: list[Path]) -> CrawlRun | None:
    if not files:
        return None
    with_files = [File(path.open("rb"), name=path.name) for path in files]
    try:
        source = services.source_documents_get_or_create(assistant=assistant)
        return services.documents_upload(source=source, files=with_files)
    finally:
        for file in with_files:
            file.close()


class Command(BaseCommand):
    help = "Measure crawling + documents + chunking + embedding end to end against embedding alone."

    def add_arguments(self, parser):
        parser.add_argument("--site", default=str(SHARED / "sites" / "drf"), help="A static site folder to serve.")
        parser.add_argument("--docs", default=str(SHARED / "docs"), help="A folder of documents to upload.")
        parser.add_argument("--no-docs", action="store_true", help="Crawl only.")
        parser.add_argument("--max-pages", type=int, default=500)
        parser.add_argument(
            "--eager",
            action="store_true",
            help="Run every task in this process, one after the other, instead of on real workers.",
        )
        parser.add_argument(
            "--rounds",
            type=int,
            default=1,
            help="Run the pipeline this many times, each on a new assistant, and print the median efficiency too.",
        )
        parser.add_argument(
            "--broker",
            default="",
            help="Redis URL of the workers' queues (default: REDIS_URL's "
            f"server, database {BENCH_BROKER_DB}); its ingest and embed queues are emptied first.",
        )
        parser.add_argument("--out", help="Write the figures as JSON here too.")

    def handle(self, *args, site, docs, no_docs, max_pages, eager, rounds, broker, out, **options):
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per eager task otherwise
        site_dir, docs_dir = Path(site), Path(docs)
        if not site_dir.is_dir():
            raise CommandError(f"{site} is not a folder")
        if rounds < 1:
            raise CommandError("--rounds must be at least 1")
        files = [] if no_docs else sorted(p for p in docs_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        label = f"bench-ingest-{timezone.now():%Y%m%d-%H%M%S}"
        owner = User.objects.create_user(username=label)
        team = team_create(name=label, owner=owner)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site_dir)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.started_at = timezone.now()
        self.pool = None
        reports: list[dict] = []
        try:
            for number in range(1, rounds + 1):
                before = reports[-1]["embed_alone_measured_seconds"] if reports else None
                report = self._round(team, f"{label}-{number}", server, files, max_pages, eager, broker, before)
                reports.append(report)
                self.stdout.write(_summary(report))
        finally:
            if self.pool is not None:
                self.pool.stop()
            server.shutdown()
            EmbeddingCache.objects.filter(created_at__gte=self.started_at).delete()
            remove(team, owner)
        report = dict(reports[-1], rounds=[r["pipeline_efficiency"] for r in reports])
        if rounds > 1:
            report["median_pipeline_efficiency"] = round(statistics.median(report["rounds"]), 3)
            self.stdout.write(
                f"pipeline efficiency by round {report['rounds']}: median "
                f"{report['median_pipeline_efficiency']} (goal ≤ 1.25)"
            )
        if out:
            Path(out).write_text(json.dumps(report, indent=2))

    def _round(self, team, label, server, files, max_pages, eager, broker, alone_before) -> dict:
        """One run of the pipeline on a new assistant, then the same texts embedded alone. Its baseline is
        the mean of that and of the measurement just before the round (the previous round's), when there
        is one, so that a machine speeding up or slowing down meanwhile weighs on both sides alike."""
        inside = None
        assistant = assistant_create(team=team, name=label)
        space = space_active(assistant.pk)
        embedder = get_embedder(space.model_name)
        embedder.embed_documents(["warm up the model before the clock starts"])
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with override_settings(OUTBOUND_ALLOW_PRIVATE=True):
            source = services.source_create_website(assistant=assistant, url=url, max_pages=max_pages, max_depth=20)
            if eager:
                always_eager, app.conf.task_always_eager = app.conf.task_always_eager, True
                inside = _Stopwatch(embedder)
                try:
                    begin = time.perf_counter()
                    crawl = services.source_crawl_start(source=source)  # the crawl and the indexing of its pages
                    crawl_seconds = time.perf_counter() - begin
                    _upload(assistant, files)
                    pipeline_seconds = time.perf_counter() - begin
                finally:
                    inside.stop()
                    app.conf.task_always_eager = always_eager
            else:
                if self.pool is None:
                    self._start_workers(team, label, broker)
                begin = time.time()  # the workers' clock: they record when each run finished
                crawl = services.source_crawl_start(source=source)
                uploads = _upload(assistant, files)
                finished = _wait([run for run in (crawl, uploads) if run], begin, self.pool)
                crawl_seconds, pipeline_seconds = finished[crawl.pk], max(finished.values())
        crawl.refresh_from_db()
        documents = Document.objects.filter(source__assistant=assistant)
        with connection.cursor() as cursor:
            cursor.execute("select search_text from ingestion_chunk where space_id = %s", [space.pk])
            texts = [row[0] for row in cursor.fetchall()]
        unique = list(dict.fromkeys(texts))  # what the pipeline embeds: its cache skips repeated texts
        runs = []
        for _ in range(2):
            begin = time.perf_counter()
            embedder.embed_documents(unique, batch_tokens=settings.EMBEDDING_BATCH_TOKENS)
            runs.append(time.perf_counter() - begin)
        measured = min(runs)
        embed_seconds = measured if alone_before is None else (alone_before + measured) / 2
        # The next round embeds everything again.
        EmbeddingCache.objects.filter(created_at__gte=self.started_at).delete()
        web_chunks = sum(documents.filter(source=source).values_list("chunk_count", flat=True))
        return {
            "model": space.model_name,
            "device": str(getattr(embedder, "device", "")),
            "mode": "eager (one process, one task after the other)" if eager else "workers (ingest + embed)",
            "pages_fetched": crawl.pages_fetched,
            "pages_failed": crawl.pages_failed,
            "documents_uploaded": len(files),
            "documents_failed": documents.exclude(source=source).filter(status="failed").count(),
            "chunks": len(texts),
            "unique_chunk_texts": len(unique),
            "crawl_seconds": round(crawl_seconds, 4),
            "pipeline_seconds": round(pipeline_seconds, 4),
            "embed_alone_seconds": round(embed_seconds, 4),
            "embed_alone_measured_seconds": round(measured, 4),
            "embed_alone_before_seconds": alone_before,
            "embed_alone_runs": [round(seconds, 4) for seconds in runs],
            "embed_inside_pipeline_seconds": round(inside.seconds, 4) if inside else None,
            "pages_per_second": round(crawl.pages_fetched / crawl_seconds, 2),
            "web_chunks_per_second": round(web_chunks / crawl_seconds, 1),
            "chunks_per_second": round(len(texts) / pipeline_seconds, 1),
            "pipeline_efficiency": round(pipeline_seconds / embed_seconds, 3) if embed_seconds else None,
        }

    def _start_workers(self, team, label, broker) -> None:
        broker_url = broker or bench_broker_url()
        _use_broker(broker_url)
        _empty_queues(broker_url)
        self.pool = pool = _Workers(broker_url)  # stopped by handle, even if the warm-up fails
        # Warm up both workers (Django, the parser sandbox, the model) on an assistant of its own.
        warm_up = assistant_create(team=team, name=f"{label}-warm-up")
        warm_run = services.documents_upload(
            source=services.source_documents_get_or_create(assistant=warm_up),
            files=[ContentFile(b"Warming up the workers.", name="warm-up.txt")],
        )
        _wait([warm_run], time.time(), pool, timeout=600)


def _summary(report: dict) -> str:
    lines = (
        f"{report['mode']}: {report['pages_fetched']} pages ({report['pages_per_second']}/s), "
        f"{report['documents_uploaded']} documents ({report['documents_failed']} failed), {report['chunks']} chunks "
        f"({report['unique_chunk_texts']} distinct texts) "
        f"({report['chunks_per_second']}/s) with {report['model']}\nend to end {report['pipeline_seconds']} s, "
        f"embedding alone {report['embed_alone_seconds']} s: pipeline efficiency {report['pipeline_efficiency']} "
        "(goal ≤ 1.25)"
    )
    if report["embed_alone_before_seconds"] is not None:
        lines += (
            f"\n(embedding alone: {report['embed_alone_before_seconds']} s before the round, "
            f"{report['embed_alone_measured_seconds']} s after)"
        )
    if report["embed_inside_pipeline_seconds"] is not None:
        inside = report["embed_inside_pipeline_seconds"]
        lines += (
            f"\ninside the model during the pipeline {inside:.1f} s, "
            f"everything else {report['pipeline_seconds'] - inside:.1f} s"
        )
    return lines
