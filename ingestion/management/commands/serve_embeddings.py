"""Serve a local embedding model as an OpenAI-compatible ``/v1/embeddings`` (see
``ingestion.embedding.server``), for web processes that embed queries on this GPU machine.

    python manage.py serve_embeddings --host 0.0.0.0 --port 8081

Set ``EMBEDDING_SERVER_TOKEN`` before listening beyond loopback.
"""

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from ingestion.embedding import Embedder, get_embedder
from ingestion.embedding.server import EmbeddingServer


class Command(BaseCommand):
    help = "Serve an embedding model over an OpenAI-compatible /v1/embeddings API, batching concurrent requests."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
        parser.add_argument("--model", default="", help="model to serve (default: EMBEDDING_MODEL)")
        parser.add_argument(
            "--max-batch-tokens",
            type=int,
            default=settings.EMBEDDING_BATCH_TOKENS,
            help="token budget of one batch (default: EMBEDDING_BATCH_TOKENS, else the engine's own)",
        )
        parser.add_argument(
            "--max-wait-ms",
            type=float,
            default=5.0,
            help="how long a request waits for others to share its batch (default 5)",
        )

    def handle(self, *args, **options):
        engine = get_embedder(options["model"])
        options["max_batch_tokens"] = options["max_batch_tokens"] or engine.batch_tokens
        if isinstance(engine, Embedder):  # load kernels (and compile, with EMBEDDING_COMPILE) before serving
            engine.embed_queries(["warm up"], batch_tokens=options["max_batch_tokens"])
        app = EmbeddingServer(engine, max_batch_tokens=options["max_batch_tokens"], max_wait_ms=options["max_wait_ms"])
        self.stdout.write(
            f"Serving {engine.name} ({engine.dims} dimensions) on "
            f"http://{options['host']}:{options['port']}/v1/embeddings"
            + (" with a bearer token" if app.token else " without authentication")
        )
        uvicorn.run(app, host=options["host"], port=options["port"], lifespan="off", log_level="info")
