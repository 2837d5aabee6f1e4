"""``bench_answers``: what a visitor gets from a whole site (``make bench-answers``). Not a timed test.

A static site folder is served on loopback and crawled by the real crawler into an isolated team
(removed afterwards unless ``--keep``), with the exclusions a team would set (``--exclude``,
repeatable: shell globs on the path, as on a website source). Then every question of each
``--questions`` file (JSONL: ``id``, ``question``, ``linked_pages`` — site-relative paths of the
pages that answer it, as in the shared ``qa/django_faq.jsonl``) is asked through the real chat
pipeline (``answer_events``: retrieval, the evidence gate, the answerer configured — the offline
extractive one without ``LLM_*`` settings — and the citations), and the ``--off-topic`` questions,
which no page answers, too.

Per question it prints whether a linked page is cited in the answer, the rank of the first linked
page among the pages retrieval found (top 10), that rank by each leg of hybrid search alone
(``lex``, ``dense``: is a miss within fusion's reach?), and whether the answer was a refusal ("I
don't know"); then the counts:

* linked questions whose linked page is cited in the answer (the visitor's figure);
* linked questions whose linked page retrieval ranks in the top three, and of those the false
  refusals (the gate said "I don't know" although the page was found);
* off-topic questions refused (honest refusals).

``--assistant SLUG`` asks an assistant indexed before (``--keep``) instead of crawling again.
The default site is the Django 3.2 documentation of the shared evaluation data with its FAQ
questions; ``make bench-answers`` runs it and the DRF site with its own questions.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone

from assistants.answering.pipeline import answer_events
from assistants.answering.retrieval import retrieve
from assistants.golden.services import assistant_calibrate
from assistants.management.commands.evaluate_retrieval import remove
from assistants.models import Assistant, Conversation, Message
from assistants.services import assistant_create, team_create
from chatsite.celery import app
from chatsite.env import shared_data_dir
from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.models import CrawlRun
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import space_active

BENCH_DATA = Path(__file__).resolve().parent / "bench_data"
RANK_DEPTH = 20  # chunks read to rank pages for the "found" figure


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def resolve(name: str) -> Path:
    """``name`` as given when it exists, else in the shared evaluation data, else in ``bench_data/``."""
    for candidate in (Path(name), shared_data_dir(Path(settings.BASE_DIR)) / name, BENCH_DATA / name):
        if candidate.exists():
            return candidate
    raise CommandError(f"not found: {name}")


def load_questions(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            linked = [page.removesuffix("index.html") for page in row.get("linked_pages") or []]
            rows.append({"id": row["id"], "question": row["question"], "linked": linked})
    return rows


def relative_page(url: str, base: str) -> str:
    """A page's site-relative path, the way ``linked_pages`` spells it: no fragment, no query, and a
    folder's ``index.html`` is the folder (``api-guide/throttling/``, ``""`` for the home page)."""
    path = urlsplit(url).path
    base_path = urlsplit(base).path
    path = path[len(base_path) :] if path.startswith(base_path) else path.lstrip("/")
    return path.removesuffix("index.html")


def first_rank(pages: list[str], linked: set[str], depth: int = 10) -> int | None:
    """The rank (from 1) of the first linked page among the first ``depth`` pages, None beyond."""
    return next((n for n, page in enumerate(pages[:depth], start=1) if page in linked), None)


def leg_ranks(assistant, question: str, linked: set[str], base: str) -> dict[str, int | None]:
    """Where each leg of hybrid search alone ranks the first linked page among pages (top 10, None
    beyond): a page no leg finds is out of fusion's reach; one a leg ranks above the fused ranking
    was pulled down by the other leg."""
    space = space_active(assistant.pk)
    vector = get_embedder(space.model_name).embed_queries([question])[0]
    ranks = {}
    for mode in ("lexical", "dense"):
        hits = chunk_search(space=space, query=question, vector=vector, k=RANK_DEPTH, mode=mode)
        ranks[mode] = first_rank(list(dict.fromkeys(relative_page(hit.url, base) for hit in hits)), linked)
    return ranks


def summarise(results: list[dict], off_topic: list[dict]) -> dict:
    linked = [r for r in results if r["linked"]]
    found = [r for r in linked if r["rank"] is not None and r["rank"] <= 3]
    return {
        "questions": len(results),
        "linked": len(linked),
        "linked_cited": sum(r["cited_linked"] for r in linked),
        "linked_found_top3": len(found),
        "false_refusals_top3": sum(r["refused"] for r in found),
        "linked_refused": sum(r["refused"] for r in linked),
        "unlinked_refused": sum(r["refused"] for r in results if not r["linked"]),
        "unlinked": len(results) - len(linked),
        "off_topic": len(off_topic),
        "off_topic_refused": sum(r["refused"] for r in off_topic),
    }


class Command(BaseCommand):
    help = "Ask a whole site's questions through the real pipeline; count cited linked pages and refusals."

    def add_arguments(self, parser):
        parser.add_argument("--site", default="sites/django-docs", help="static site folder")
        parser.add_argument("--start", default="index.html", help="start page, relative to the site folder")
        parser.add_argument(
            "--questions",
            action="append",
            default=[],
            help="JSONL question file (repeatable; default: the shared Django FAQ)",
        )
        parser.add_argument(
            "--off-topic", default="off_topic_questions.jsonl", help="questions no page answers ('' for none)"
        )
        parser.add_argument("--exclude", action="append", default=[], help="path glob left out of the crawl")
        parser.add_argument("--max-pages", type=int, default=1000)
        parser.add_argument("--max-depth", type=int, default=10)
        parser.add_argument("--assistant", default="", help="ask this (kept) assistant instead of crawling")
        parser.add_argument("--keep", action="store_true", help="keep the team and its index afterwards")
        parser.add_argument(
            "--calibrate", action="store_true", help="calibrate the kept assistant's gate again before asking"
        )
        parser.add_argument("--show", action="store_true", help="print each answer")
        parser.add_argument("--out", help="write the results as JSON here too")

    def handle(self, *args, **options):
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        site = resolve(options["site"])
        if not (site / options["start"]).is_file():
            raise CommandError(f"no {options['start']} in {site}")
        files = options["questions"] or ["qa/django_faq.jsonl"]
        question_sets = {Path(name).stem: load_questions(resolve(name)) for name in files}
        off_topic = load_questions(resolve(options["off_topic"])) if options["off_topic"] else []
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        team = owner = None
        try:
            with override_settings(OUTBOUND_ALLOW_PRIVATE=True):
                if options["assistant"]:
                    assistant = Assistant.objects.get(slug=options["assistant"])
                    base = assistant.sources.filter(kind="website").values_list("url", flat=True).first() or base
                    base = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}/"
                    # a kept assistant was crawled from a server gone since: its pages keep their addresses
                else:
                    label = f"bench-answers-{timezone.now():%Y%m%d-%H%M%S}"
                    owner = User.objects.create_user(username=label)
                    team = team_create(name=label, owner=owner)
                    assistant = assistant_create(team=team, name=label)
                    self._crawl(assistant, base + options["start"], options)
                space = space_active(assistant.pk)
                if options["calibrate"] or not space.calibration:
                    assistant_calibrate(assistant_id=assistant.pk)  # (a crawl calibrates it when it finishes)
                    space.refresh_from_db()
                gate = space.calibration
                self.stdout.write(
                    f"gate: min similarity {gate.get('min_similarity')} (across languages"
                    f" {gate.get('cross_language_min_similarity')}), content language {gate.get('language')!r};"
                    f" covered probes {gate.get('covered')}, unrelated probes {gate.get('unrelated')}"
                )
                report = {"site": str(site), "assistant": assistant.slug, "gate": gate, "sets": {}}
                for name, questions in question_sets.items():
                    results = [self._ask(assistant, q, base, options["show"]) for q in questions]
                    report["sets"][name] = {"results": results}
                asked_off_topic = [self._ask(assistant, q, base, options["show"]) for q in off_topic]
                report["off_topic"] = asked_off_topic
                for name, data in report["sets"].items():
                    data["summary"] = summarise(data["results"], asked_off_topic)
                    self._print(name, data, asked_off_topic)
        finally:
            server.shutdown()
            if team is not None and not options["keep"]:
                remove(team, owner)
            elif team is not None:
                self.stdout.write(f"kept: --assistant {assistant.slug}")
        if options.get("out"):
            Path(options["out"]).write_text(json.dumps(report, indent=2, ensure_ascii=False))

    def _crawl(self, assistant, start: str, options) -> None:
        """The site crawled and indexed by the real services, every task in this process."""
        source = services.source_create_website(
            assistant=assistant, url=start, max_pages=options["max_pages"], max_depth=options["max_depth"]
        )
        source.settings["exclude"] = options["exclude"]
        source.save(update_fields=["settings"])
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            run = services.source_crawl_start(source=source)
        finally:
            app.conf.task_always_eager = eager
        run.refresh_from_db()
        if run.status != CrawlRun.Status.DONE:
            raise CommandError(f"the crawl ended {run.status}: {run.error}")
        self.stdout.write(f"indexed {run.pages_fetched} pages, {run.chunks_embedded} chunks from {start}")

    def _ask(self, assistant, question: dict, base: str, show: bool) -> dict:
        async def run():
            conversation = await Conversation.objects.acreate(assistant=assistant, visitor_token="bench-answers")
            events = [
                event
                async for event in answer_events(
                    assistant=assistant, conversation=conversation, question=question["question"]
                )
            ]
            message = await conversation.messages.filter(role=Message.Role.ASSISTANT).afirst()
            return events, message

        events, message = async_to_sync(run)()
        citations = next((e.data["citations"] for e in events if e.name == "citations"), [])
        cited = list(dict.fromkeys(relative_page(c["url"], base) for c in citations))
        pages = list(
            dict.fromkeys(relative_page(hit.url, base) for hit in retrieve(assistant, question["question"], RANK_DEPTH))
        )
        linked = set(question["linked"])
        rank = first_rank(pages, linked)
        legs = leg_ranks(assistant, question["question"], linked, base) if linked else {}
        retrieval = (message.grounding or {}).get("retrieval") or {}
        result = {
            **question,
            "cited": cited,
            "sections": [c.get("section", "") for c in citations],
            "cited_linked": bool(linked & set(cited)),
            "rank": rank,
            "leg_ranks": legs,
            "refused": bool(retrieval.get("weak")),
            "unanswered": message.unanswered,
            "evidence": retrieval,
            "answer": message.text,
        }
        mark = "cited" if result["cited_linked"] else ("miss " if linked else "     ")
        refused = "REFUSED" if result["refused"] else "       "
        by_leg = f"lex={legs.get('lexical') or '-':<2} dense={legs.get('dense') or '-':<2}" if linked else " " * 15
        self.stdout.write(
            f"{question['id']:<20} {mark} rank={rank or '-':<2} {by_leg} {refused} {question['question'][:60]:<60} -> {', '.join(cited[:5]) or '(none)'}"
        )
        if show:
            self.stdout.write("    " + message.text.replace("\n", "\n    ") + "\n")
        return result

    def _print(self, name: str, data: dict, off_topic: list[dict]) -> None:
        s = data["summary"]
        self.stdout.write(
            f"\n{name}: linked page cited {s['linked_cited']}/{s['linked']}; ranked top 3 {s['linked_found_top3']}/{s['linked']},"
            f' of which refused (false "I don\'t know") {s["false_refusals_top3"]}; linked refused {s["linked_refused"]};'
            f" questions without links refused {s['unlinked_refused']}/{s['unlinked']};"
            f" off-topic refused {s['off_topic_refused']}/{s['off_topic']}"
        )
