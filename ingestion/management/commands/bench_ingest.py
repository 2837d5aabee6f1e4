"""``bench_ingest``: the ingestion pipeline end to end, against embedding alone (``make bench-ingest``).

Crawls a static site served on loopback (default: the Django REST framework documentation in
``../shared/data/sites/drf/``) and uploads a folder of documents (default: ``../shared/data/docs/``)
into an isolated, temporary team and assistant through the real services and tasks — crawler,
extraction, parsing in the sandbox, chunking, embedding, storage — run in this process (Celery
eager mode: the same task code, one task after the other, as one worker with concurrency 1).

Then it embeds the very chunk texts that were stored, alone, in large length-sorted batches, and
prints pages/s, chunks/s and the pipeline efficiency: end-to-end seconds divided by the seconds of
embedding alone, measured in the same run (goal ≤ 1.25). Embedding-cache rows the run wrote are
removed afterwards so that runs are repeatable, and the temporary team is deleted.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from assistants.services import assistant_create, team_create
from chatsite.celery import app
from chatsite.env import shared_data_dir
from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.management.commands.evaluate_retrieval import remove
from ingestion.models import Document, EmbeddingCache
from ingestion.spaces import space_active

SHARED = shared_data_dir(Path(settings.BASE_DIR))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Command(BaseCommand):
    help = "Measure crawling + documents + chunking + embedding end to end against embedding alone."

    def add_arguments(self, parser):
        parser.add_argument("--site", default=str(SHARED / "sites" / "drf"), help="A static site folder to serve.")
        parser.add_argument("--docs", default=str(SHARED / "docs"), help="A folder of documents to upload.")
        parser.add_argument("--no-docs", action="store_true", help="Crawl only.")
        parser.add_argument("--max-pages", type=int, default=500)
        parser.add_argument("--out", help="Write the figures as JSON here too.")

    def handle(self, *args, site, docs, no_docs, max_pages, out, **options):
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per eager task otherwise
        site_dir, docs_dir = Path(site), Path(docs)
        if not site_dir.is_dir():
            raise CommandError(f"{site} is not a folder")
        files = [] if no_docs else sorted(p for p in docs_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        label = f"bench-ingest-{timezone.now():%Y%m%d-%H%M%S}"
        owner = User.objects.create_user(username=label)
        team = team_create(name=label, owner=owner)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site_dir)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started_at = timezone.now()
        eager = app.conf.task_always_eager
        try:
            assistant = assistant_create(team=team, name=label)
            space = space_active(assistant.pk)
            embedder = get_embedder(space.model_name)
            embedder.embed_documents(["warm up the model before the clock starts"])
            app.conf.task_always_eager = True
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            with override_settings(OUTBOUND_ALLOW_PRIVATE=True):
                begin = time.perf_counter()
                source = services.source_create_website(assistant=assistant, url=url, max_pages=max_pages, max_depth=20)
                run = services.source_crawl_start(source=source)  # runs the crawl and every indexing task
                crawl_seconds = time.perf_counter() - begin
                if files:
                    with_files = [File(path.open("rb"), name=path.name) for path in files]
                    try:
                        documents_source = services.source_documents_get_or_create(assistant=assistant)
                        services.documents_upload(source=documents_source, files=with_files)
                    finally:
                        for file in with_files:
                            file.close()
                pipeline_seconds = time.perf_counter() - begin
            app.conf.task_always_eager = eager
            run.refresh_from_db()
            documents = Document.objects.filter(source__assistant=assistant)
            with connection.cursor() as cursor:
                cursor.execute("select search_text from ingestion_chunk where space_id = %s", [space.pk])
                texts = [row[0] for row in cursor.fetchall()]
            begin = time.perf_counter()
            embedder.embed_documents(texts, batch_tokens=settings.EMBEDDING_BATCH_TOKENS)
            embed_seconds = time.perf_counter() - begin
            web_chunks = sum(documents.filter(source=source).values_list("chunk_count", flat=True))
            report = {
                "model": space.model_name,
                "device": str(getattr(embedder, "device", "")),
                "pages_fetched": run.pages_fetched,
                "pages_failed": run.pages_failed,
                "documents_uploaded": len(files),
                "documents_failed": documents.exclude(source=source).filter(status="failed").count(),
                "chunks": len(texts),
                "crawl_seconds": round(crawl_seconds, 4),
                "pipeline_seconds": round(pipeline_seconds, 4),
                "embed_alone_seconds": round(embed_seconds, 4),
                "pages_per_second": round(run.pages_fetched / crawl_seconds, 2),
                "web_chunks_per_second": round(web_chunks / crawl_seconds, 1),
                "chunks_per_second": round(len(texts) / pipeline_seconds, 1),
                "pipeline_efficiency": round(pipeline_seconds / embed_seconds, 3) if embed_seconds else None,
            }
        finally:
            app.conf.task_always_eager = eager
            server.shutdown()
            EmbeddingCache.objects.filter(created_at__gte=started_at).delete()
            remove(team, owner)
        self.stdout.write(
            f"{report['pages_fetched']} pages ({report['pages_per_second']}/s), {report['documents_uploaded']} documents "
            f"({report['documents_failed']} failed), {report['chunks']} chunks ({report['chunks_per_second']}/s) with "
            f"{report['model']}\nend to end {report['pipeline_seconds']} s, embedding alone "
            f"{report['embed_alone_seconds']} s: pipeline efficiency {report['pipeline_efficiency']} (goal ≤ 1.25)"
        )
        if out:
            Path(out).write_text(json.dumps(report, indent=2))
