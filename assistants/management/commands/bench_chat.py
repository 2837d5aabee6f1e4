"""``bench_chat``: the chat server's own time before the first token (``make bench-chat``).

Everything but the language model: storing the question, embedding it, hybrid search, the
retrieval-evidence check, the prompt, and the request to the provider. The provider is a local
OpenAI-compatible server on loopback that streams its first token at once, so what is measured is
the server's own work (plus one loopback round trip). The corpus is the first ``--pages`` pages of
a static site (default: the Django REST framework documentation, ``sites/drf/`` in the shared
evaluation data, see ``chatsite.env.shared_data_dir``), extracted, chunked and embedded by the real
services into a temporary team removed afterwards.

The baseline, measured in the same run on the same questions, is the bare hybrid search (query
embedding and ``chunk_search``): the ratio says what answering adds on top of retrieval. Goal on a
2-core CPU without a reranker: p95 ≤ 60 ms.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone

from assistants.answering.pipeline import answer_events
from assistants.golden.services import assistant_calibrate
from assistants.management.commands.evaluate_retrieval import remove
from assistants.models import Conversation, Message
from assistants.services import assistant_create, team_create
from chatsite.celery import app
from chatsite.env import shared_data_dir
from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.models import CrawlRun, EmbeddingCache
from ingestion.parsers.html import extract_page
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import space_active

# Questions a visitor of the DRF documentation asks; a few have no answer there.
QUESTIONS = [
    "How do I configure throttle rates?",
    "How do I paginate results with a cursor?",
    "How do I write a custom permission class?",
    "How does token authentication work?",
    "How do I use ModelSerializer?",
    "How can I filter a queryset by a URL parameter?",
    "What is a ViewSet?",
    "How do routers generate URLs?",
    "How do I version my API?",
    "How do I return a custom exception response?",
    "How can I test my API views?",
    "What parsers are available for request data?",
    "How do I validate a field in a serializer?",
    "How does content negotiation work?",
    "What is the capital of France?",
    "How do I bake bread?",
]


class _InstantModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat completions endpoint that streams a short answer at once."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("The documentation ", "says so [1]."):
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 1) for q in (50, 95)}


class Command(BaseCommand):
    help = "Measure the chat server's time before the first token (everything but the LLM) against bare hybrid search."

    def add_arguments(self, parser):
        parser.add_argument("--site", default=str(shared_data_dir(Path(settings.BASE_DIR)) / "sites" / "drf"))
        parser.add_argument("--pages", type=int, default=20, help="How many of the site's pages to index.")
        parser.add_argument("--rounds", type=int, default=5, help="Times each question is asked.")
        parser.add_argument("--out", help="Write the figures as JSON here too.")

    def handle(self, *args, site, pages, rounds, out, **options):
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per eager task otherwise
        files = sorted(Path(site).rglob("index.html"))[:pages]
        if not files:
            raise CommandError(f"no index.html pages under {site}")
        label = f"bench-chat-{timezone.now():%Y%m%d-%H%M%S}"
        owner = User.objects.create_user(username=label)
        team = team_create(name=label, owner=owner)
        model = ThreadingHTTPServer(("127.0.0.1", 0), _InstantModel)
        threading.Thread(target=model.serve_forever, daemon=True).start()
        started_at = timezone.now()
        eager = app.conf.task_always_eager
        try:
            assistant = assistant_create(team=team, name=label)
            self._index(assistant, files, Path(site))
            assistant_calibrate(assistant_id=assistant.pk)  # its gate, as after a crawl (not timed)
            space = space_active(assistant.pk)
            embedder = get_embedder(space.model_name)
            llm = {
                "LLM_PROVIDER": "openai",
                "LLM_BASE_URL": f"http://127.0.0.1:{model.server_address[1]}/v1",
                "LLM_MODEL": "bench",
                "LLM_API_KEY": "bench",
                "OUTBOUND_ALLOW_PRIVATE": True,
            }
            with override_settings(**llm):
                self._first_tokens(assistant, QUESTIONS[:2], 1)  # warm up
                first_token, answered = self._first_tokens(assistant, QUESTIONS, rounds)
            search = []
            for _ in range(rounds):
                for question in QUESTIONS:
                    begin = time.perf_counter()
                    vector = embedder.embed_queries([question])[0]
                    chunk_search(space=space, query=question, vector=vector, k=settings.RETRIEVAL_TOP_K)
                    search.append((time.perf_counter() - begin) * 1000)
            report = {
                "model": space.model_name,
                "pages": len(files),
                "questions": len(QUESTIONS) * rounds,
                "answered_by_the_model": answered,
                "first_token_ms": percentiles(first_token),
                "hybrid_search_ms": percentiles(search),
                "retrieval_with_evidence_ms": percentiles(self.retrieve_ms),
                "first_token_over_search_p95": round(np.percentile(first_token, 95) / np.percentile(search, 95), 2),
            }
        finally:
            app.conf.task_always_eager = eager
            model.shutdown()
            EmbeddingCache.objects.filter(created_at__gte=started_at).delete()
            remove(team, owner)
        self.stdout.write(
            f"{report['questions']} questions over {report['pages']} pages with {report['model']} "
            f'({report["answered_by_the_model"]} went to the model, the rest were answered "I don\'t know")\n'
            f"first token: p50 {report['first_token_ms']['p50']} ms, p95 {report['first_token_ms']['p95']} ms "
            f"(goal p95 ≤ 60 ms); bare hybrid search: p50 {report['hybrid_search_ms']['p50']} ms, "
            f"p95 {report['hybrid_search_ms']['p95']} ms; ratio at p95 {report['first_token_over_search_p95']}\n"
            f"of which question stored, embedded, searched and its evidence checked: "
            f"p50 {report['retrieval_with_evidence_ms']['p50']} ms, p95 {report['retrieval_with_evidence_ms']['p95']} ms"
        )
        if out:
            Path(out).write_text(json.dumps(report, indent=2))

    def _index(self, assistant, files: list[Path], root: Path) -> None:
        """The pages, extracted, chunked and embedded by the real services (indexing run in-process)."""
        source = services.source_create_website(assistant=assistant, url="http://docs.test/")
        run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.RUNNING)
        app.conf.task_always_eager = True
        for path in files:
            url = f"http://docs.test/{path.parent.relative_to(root).as_posix()}/".replace("/./", "/")
            page = extract_page(path.read_text(errors="replace"), url)
            services.document_store(run=run, url=url, title=page.title, sections=[s.as_dict() for s in page.sections])
        app.conf.task_always_eager = False

    def _first_tokens(self, assistant, questions: list[str], rounds: int) -> tuple[list[float], int]:
        """Milliseconds from the question to its first streamed token, and how many went to the model."""

        async def ask(question: str) -> tuple[float, bool]:
            conversation = await Conversation.objects.acreate(assistant=assistant, visitor_token="bench")
            begin = time.perf_counter()
            first = None
            async for event in answer_events(assistant=assistant, conversation=conversation, question=question):
                if event.name == "token" and first is None:
                    first = (time.perf_counter() - begin) * 1000
            stored = conversation.messages.filter(role=Message.Role.ASSISTANT).values_list("provider", "timings")
            provider, timings = await stored.afirst()
            self.retrieve_ms.append(timings["retrieve_ms"])
            return first, provider != "extractive"  # extractive: weak retrieval, "I don't know"

        timings, answered, self.retrieve_ms = [], 0, []
        for _ in range(rounds):
            for question in questions:
                milliseconds, by_model = async_to_sync(ask)(question)
                timings.append(milliseconds)
                answered += by_model
        return timings, answered
