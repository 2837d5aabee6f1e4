"""``bench_analytics``: the analytics pages on their rollups against the same figures on the raw tables
(``make bench-analytics``; not a timed test).

A temporary team of ``--assistants`` assistants gets ``--messages`` messages (questions and their
answers, in conversations of one to three turns, over ``--days`` days, some unanswered, failed,
rated, citing pages, with tokens, cost and time to first token), generated from ``--seed``. The
rollups are computed once (timed), then each page's query runs ``--repeats`` times for single
assistants and for the whole team: the overview (this period and the previous one) and the source
usage from the rollups, against the same aggregates computed on the raw messages, conversations and
ratings in the same run; the figures of both are checked equal. So is the worst-conversations list
(the rollups' quality rows against the scores computed on the raw tables). Topic clustering on
synthetic question vectors is timed alone; with ``--topic-build-questions`` a whole topic build of one
assistant, then its Top questions and Content gaps pages (the data query, the page rendered through
the middleware as the team's owner, and the same list counted on the raw tables; the stored counts
checked equal to the raw ones first) and the whole team's.
The team is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import resource
import statistics
import time
from contextlib import contextmanager

import numpy as np
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from assistants.analytics import metrics, selectors, services, topics
from assistants.models import Conversation, Feedback, Message
from assistants.services import assistant_create, team_create

PAGES = [f"https://bench.example/docs/page-{n}" for n in range(200)]
MODELS = [("openai", "gpt-4o-mini", 0.15, 0.6), ("anthropic", "claude-haiku", 0.8, 4.0), ("extractive", "", 0, 0)]


@contextmanager
def created_at_as_given():
    """Let bulk_create keep the generated ``created_at`` (auto_now_add would stamp now)."""
    from assistants.models import Handoff, Lead

    fields = [Conversation._meta.get_field("created_at"), Message._meta.get_field("created_at")]
    fields += [Feedback._meta.get_field("created_at"), Handoff._meta.get_field("requested_at")]
    fields.append(Lead._meta.get_field("created_at"))
    for field in fields:
        field.auto_now_add = False
    updated = [Feedback._meta.get_field("updated_at"), Lead._meta.get_field("updated_at")]
    for field in updated:
        field.auto_now = False
    try:
        yield
    finally:
        for field in fields:
            field.auto_now_add = True
        for field in updated:
            field.auto_now = True


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


class Command(BaseCommand):
    help = "Time the analytics pages on their rollups against the raw tables (see the module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=100_000)
        parser.add_argument("--assistants", type=int, default=20)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--repeats", type=int, default=10)
        parser.add_argument("--topic-sizes", default="1000,2000,5000", help="questions per clustering run")
        parser.add_argument(
            "--topic-build-questions",
            type=int,
            default=0,
            help="also time a whole topic build (read, cluster, label, gaps) of one assistant with this many"
            " questions and synthetic embeddings",
        )
        parser.add_argument("--keep", action="store_true", help="keep the generated team")
        parser.add_argument("--out", default="", help="write the figures to this JSON file")

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        owner = User.objects.create_user(username=f"bench-analytics-{int(time.time())}")
        team = team_create(name="bench analytics", owner=owner)
        try:
            self.run(team, rng, options)
        finally:
            if not options["keep"]:
                self.remove_bulk(team)
                team.delete()
                owner.delete()

    @staticmethod
    def remove_bulk(team) -> None:
        """Delete the generated rows table by table in SQL (the ORM's cascade would load a million
        messages first: over ten minutes); anything else refers to them, and the transaction is undone
        and the team's delete does it all."""
        from django.db import DatabaseError, transaction

        from assistants.models import (
            ContentGap,
            ConversationQuality,
            DailyRollup,
            GapQuestion,
            Handoff,
            Lead,
            QuestionEmbedding,
            Topic,
            TopicBuild,
        )

        order = [
            (Lead, "team"),
            (Handoff, "conversation__assistant__team"),
            (GapQuestion, "gap__assistant__team"),
            (ContentGap, "assistant__team"),
            (Topic, "assistant__team"),
            (TopicBuild, "assistant__team"),
            (QuestionEmbedding, "assistant__team"),
            (ConversationQuality, "assistant__team"),
            (DailyRollup, "assistant__team"),
            (Feedback, "conversation__assistant__team"),
            (Message, "conversation__assistant__team"),
            (Conversation, "assistant__team"),
        ]
        try:
            with transaction.atomic():
                for model, path in order:
                    ids = model.objects.filter(**{path: team}).values("pk")
                    model.objects.filter(pk__in=ids)._raw_delete(model.objects.db)
        except DatabaseError:
            pass

    def run(self, team, rng: random.Random, options: dict) -> None:
        out = self.stdout.write
        self.report = {
            "started": timezone.now().isoformat(timespec="seconds"),
            "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})",
            "options": {k: options[k] for k in ("messages", "assistants", "days", "seed", "repeats")},
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
            "pages": {},
        }
        out(f"load average (1, 5, 15 min) at the start: {self.report['load_average_start']}")
        assistants = [assistant_create(team=team, name=f"bench {n}") for n in range(options["assistants"])]
        ids = [a.pk for a in assistants]
        started = time.perf_counter()
        self.generate(assistants, rng, options)
        self.report["generate_s"] = round(time.perf_counter() - started, 1)
        out(
            f"generated {options['messages']:,} messages over {len(ids)} assistants and {options['days']} days"
            f" in {time.perf_counter() - started:.1f} s (seed {options['seed']})"
        )
        today = timezone.now().date()
        started = time.perf_counter()
        rows = services.rollups_compute(start=today - dt.timedelta(days=options["days"]), end=today, assistant_ids=ids)
        self.report["rollups"] = {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}
        out(f"rollups: {rows:,} assistant-days computed in {time.perf_counter() - started:.1f} s")

        period = selectors.default_period(today)
        scopes = [("one assistant", [rng.choice(ids)]) for _ in range(3)] + [("whole team", ids)]
        results: dict[str, dict[str, list[float]]] = {}
        for label, scope in scopes:
            self.check_equal(scope, period)
            for name, rolled, raw in [
                ("overview", lambda s=scope: selectors.overview(assistant_ids=s, period=period), self.raw_overview),
                ("sources", lambda s=scope: selectors.source_usage(assistant_ids=s, period=period), self.raw_sources),
                (
                    "worst conversations",
                    lambda s=scope: selectors.worst_conversations(assistant_ids=s, period=period),
                    self.raw_worst,
                ),
            ]:
                timings = results.setdefault(f"{name} ({label})", {"rollups": [], "raw": []})
                for _ in range(options["repeats"]):
                    t = time.perf_counter()
                    rolled()
                    timings["rollups"].append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    raw(scope, period)
                    if name == "overview":
                        raw(scope, period.previous())  # the page shows the previous period too
                    timings["raw"].append((time.perf_counter() - t) * 1000)
        out(f"\n{'page query':<40} {'rollups p50/p95 ms':>20} {'raw p50/p95 ms':>18} {'raw ÷ rollups':>14}")
        for name, timings in results.items():
            raw50, raw95 = percentiles(timings["raw"])
            r50, r95 = percentiles(timings["rollups"])
            out(f"{name:<40} {r50:>9.1f} / {r95:>7.1f} {raw50:>8.1f} / {raw95:>7.1f} {raw95 / r95:>13.1f}x")
            self.report["pages"][name] = {
                "rollups_ms": {"p50": round(r50, 1), "p95": round(r95, 1)},
                "raw_ms": {"p50": round(raw50, 1), "p95": round(raw95, 1)},
            }

        # The Overview's handoff reasons and lead quality read the handoff and lead rows (no rollup):
        # timed alone, the period and the previous one, as the page asks them.
        tables: dict[str, list[float]] = {}
        for label, scope in scopes:
            for name, query in [
                ("handoff reasons", lambda s=scope: selectors.handoff_reasons(assistant_ids=s, period=period)),
                ("lead quality", lambda s=scope: selectors.lead_quality(assistant_ids=s, period=period)),
            ]:
                timings = tables.setdefault(f"{name} ({label})", [])
                for _ in range(options["repeats"]):
                    t = time.perf_counter()
                    query()
                    timings.append((time.perf_counter() - t) * 1000)
        out(f"\n{'table (own rows, no rollup)':<40} {'p50/p95 ms':>20}")
        for name, timings in tables.items():
            p50, p95 = percentiles(timings)
            out(f"{name:<40} {p50:>9.1f} / {p95:>7.1f}")
            self.report.setdefault("tables", {})[name] = {"p50": round(p50, 1), "p95": round(p95, 1)}
        from assistants.models import Handoff, Lead

        self.report["handoffs"] = Handoff.objects.filter(conversation__assistant__team=team).count()
        self.report["leads"] = Lead.objects.filter(team=team).count()
        out(f"({self.report['handoffs']:,} handoffs, {self.report['leads']:,} leads generated)")

        out("\ntopic clustering (synthetic 384-d question vectors, 1 process):")
        np_rng = np.random.default_rng(options["seed"])
        topics.cluster(np_rng.normal(size=(50, 384)))  # imports scikit-learn: not part of a timing
        for size in [int(s) for s in options["topic_sizes"].split(",") if s]:
            centres = np_rng.normal(size=(max(10, size // 25), 384))
            vectors = centres[np_rng.integers(0, len(centres), size)] + np_rng.normal(scale=0.35, size=(size, 384))
            t = time.perf_counter()
            labels = topics.cluster(vectors)
            seconds = time.perf_counter() - t
            self.report.setdefault("clustering_s", {})[size] = round(seconds, 2)
            out(f"  {size:>6,} questions: {seconds:6.2f} s, {labels.max() + 1} topics")
        if options["topic_build_questions"]:
            self.time_topic_build(team, options["topic_build_questions"], np_rng, options["repeats"])
        self.report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        self.report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        out(f"\nload average at the end: {self.report['load_average_end']}; peak memory {self.report['max_rss_mb']} MB")
        if options["out"]:
            with open(options["out"], "w") as handle:
                json.dump(self.report, handle, indent=2)
                handle.write("\n")

    def time_topic_build(self, team, size: int, np_rng, repeats: int) -> None:
        """A whole topic build of one assistant's ``size`` questions of the last 30 days (a fifth unanswered),
        their embeddings stored as the question task stores them (synthetic vectors around size/25 intents)."""
        from assistants.models import QuestionEmbedding, TopicBuild
        from ingestion.spaces import space_active

        assistant = assistant_create(team=team, name="bench topics")
        space = space_active(assistant.pk)
        now = timezone.now()
        centres = np_rng.normal(size=(max(10, size // 25), space.dims))
        vectors = centres[np_rng.integers(0, len(centres), size)] + np_rng.normal(scale=0.35, size=(size, space.dims))
        t = time.perf_counter()
        with created_at_as_given():
            conversations = Conversation.objects.bulk_create(
                [
                    Conversation(
                        assistant=assistant, visitor_token=f"t{n}", created_at=now - dt.timedelta(minutes=n % 40000)
                    )
                    for n in range(size)
                ],
                batch_size=5000,
            )
            questions = Message.objects.bulk_create(
                [
                    Message(conversation=c, role="user", text=f"question {n}", created_at=c.created_at)
                    for n, c in enumerate(conversations)
                ],
                batch_size=5000,
            )
            Message.objects.bulk_create(
                [
                    Message(conversation=c, role="assistant", text="-", unanswered=n % 5 == 0, created_at=c.created_at)
                    for n, c in enumerate(conversations)
                ],
                batch_size=5000,
            )
        QuestionEmbedding.objects.bulk_create(
            [
                QuestionEmbedding(
                    message=m, assistant=assistant, model_name=space.model_name, vector=[float(x) for x in v]
                )
                for m, v in zip(questions, vectors)
            ],
            batch_size=2000,
        )
        self.stdout.write(f"\ntopic build: {size:,} questions stored in {time.perf_counter() - t:.1f} s")
        today = now.date()
        build = TopicBuild.objects.create(assistant=assistant, start=today - dt.timedelta(days=29), end=today)
        t = time.perf_counter()
        services.topics_build(build_id=build.pk)
        built_s = time.perf_counter() - t
        build.refresh_from_db()
        self.stdout.write(
            f"  built in {built_s:.1f} s: {build.questions:,} questions, {build.topics.count():,} topics,"
            f" {assistant.content_gaps.count():,} gaps (clustered at most {topics.MAX_CLUSTERED:,}, the rest joined"
            " the nearest topic)"
        )
        self.report["topic_build"] = {
            "questions": build.questions,
            "seconds": round(built_s, 1),
            "topics": build.topics.count(),
            "gaps": assistant.content_gaps.count(),
            "intents": len(centres),
            "max_clustered": topics.MAX_CLUSTERED,
        }
        # The Top questions and Content gaps pages of that assistant (and of the whole team, which holds
        # it): the data query (the first selectors.PAGE_ROWS and the count), the whole page rendered by
        # its view, and the same list computed from the raw messages, conversations and ratings.
        self.check_topics_equal(build)
        page_timings = self.time_topic_pages(team, assistant, build, repeats)
        for name, timings in page_timings.items():
            figures = {side: dict(zip(("p50", "p95"), percentiles(ms))) for side, ms in timings.items()}
            self.report["pages"][name] = {
                f"{side.replace(' ', '_')}_ms": {key: round(value, 1) for key, value in ms.items()}
                for side, ms in figures.items()
            }
            shown = "  ".join(f"{side} p50 {ms['p50']:.1f} / p95 {ms['p95']:.1f} ms" for side, ms in figures.items())
            ratio = figures["raw"]["p95"] / figures["page"]["p95"] if "raw" in figures else None
            self.stdout.write(f"  {name}: {shown}" + (f"  raw ÷ page {ratio:.1f}x" if ratio else ""))
        # Between rebuilds: new questions join the nearest topic, one task each.
        with created_at_as_given():
            late = [
                Message.objects.create(
                    conversation=Conversation.objects.create(
                        assistant=assistant, visitor_token=f"late{n}", created_at=now
                    ),
                    role="user",
                    text=f"late question {n}",
                    created_at=now,
                )
                for n in range(50)
            ]
        near = centres[np_rng.integers(0, len(centres), len(late))] + np_rng.normal(
            scale=0.35, size=(len(late), space.dims)
        )
        QuestionEmbedding.objects.bulk_create(
            [
                QuestionEmbedding(
                    message=m, assistant=assistant, model_name=space.model_name, vector=[float(x) for x in v]
                )
                for m, v in zip(late, near)
            ]
        )
        timings, joined = [], 0
        for message in late:
            started = time.perf_counter()
            joined += services.topic_join(message_id=message.pk) is not None
            timings.append((time.perf_counter() - started) * 1000)
        p50, p95 = percentiles(timings)
        self.report["topic_join_ms"] = {"p50": round(p50, 1), "p95": round(p95, 1), "joined": joined, "of": len(late)}
        self.stdout.write(
            f"  a new question joining the nearest topic: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({joined}/{len(late)} joined)"
        )

    def time_topic_pages(self, team, assistant, build, repeats: int) -> dict[str, dict[str, list[float]]]:
        """Each list page of topics and gaps: its data query, the page rendered by the view (as the owner)
        and, for one assistant, the same list from the raw tables."""
        from django.conf import settings
        from django.test import Client
        from django.urls import reverse

        owner = team.memberships.select_related("user").first().user
        # The whole request through the middleware, as the owner, on an allowed host.
        client = Client(HTTP_HOST=settings.ALLOWED_HOSTS[0], secure=settings.SECURE_SSL_REDIRECT)
        client.force_login(owner)

        def render(name, *args, table: str = "", params: dict | None = None):
            url = reverse(name, args=args)

            def get():
                response = client.get(url, ({"table": table} if table else {}) | (params or {}))
                assert response.status_code == 200, response.status_code
                return b"".join(response.streaming_content) if response.streaming else response.content

            return get

        everyone = list(team.assistants.values_list("pk", flat=True))
        one = f"the {build.questions:,}-question assistant"
        wider = selectors.Period(build.start - dt.timedelta(days=1), build.end)
        cases = {
            f"top questions ({one})": {
                "query": lambda: selectors.topics(assistant_ids=[assistant.pk], limit=selectors.PAGE_ROWS),
                "page": render("assistant_analytics", assistant.pk, "questions"),
                "raw": lambda: self.raw_topics(build.pk),
                "export of all": render("assistant_analytics_export", assistant.pk, "questions", table="topics"),
            },
            f"content gaps ({one})": {
                "query": lambda: selectors.gaps(assistant_ids=[assistant.pk], limit=selectors.PAGE_ROWS),
                "page": render("assistant_analytics", assistant.pk, "gaps"),
                "raw": lambda: self.raw_gaps(build.pk),
                "export of all": render("assistant_analytics_export", assistant.pk, "gaps", table="gaps"),
            },
            # A period one day longer than the build's: every topic counted again over the questions it
            # holds that were asked in the period (the stored question→topic assignments, one query).
            f"top questions ({one}), another period": {
                "query": lambda: selectors.topics(
                    assistant_ids=[assistant.pk], period=wider, limit=selectors.PAGE_ROWS
                ),
                "page": render(
                    "assistant_analytics",
                    assistant.pk,
                    "questions",
                    params={"start": wider.start.isoformat(), "end": wider.end.isoformat()},
                ),
            },
            "top questions (whole team)": {
                "query": lambda: selectors.topics(assistant_ids=everyone, limit=selectors.PAGE_ROWS),
                "page": render("team_analytics", team.pk, "questions"),
            },
            "content gaps (whole team)": {
                "query": lambda: selectors.gaps(assistant_ids=everyone, limit=selectors.PAGE_ROWS),
                "page": render("team_analytics", team.pk, "gaps"),
            },
        }
        results: dict[str, dict[str, list[float]]] = {}
        for name, sides in cases.items():
            for side, read in sides.items():
                read()  # warm: the first render compiles the templates
                timings = results.setdefault(name, {}).setdefault(side, [])
                for _ in range(repeats):
                    started = time.perf_counter()
                    read()
                    timings.append((time.perf_counter() - started) * 1000)
        return results

    # The topic and gap lists on the raw tables: the build's members (its clustering, which has no raw
    # equivalent) counted from the messages, conversations and ratings.
    RAW_TOPIC_MEMBERS = """
        with members as (
            select t.id as topic, (jsonb_array_elements_text(t.message_ids))::bigint as question
            from assistants_topic t where t.build_id = %s),
        rows as (
            select m.topic, c.visitor_token as visitor, coalesce(a.unanswered, false) as unanswered,
                   coalesce(f.rating = -1, false) as down
            from members m join assistants_message q on q.id = m.question
            join assistants_conversation c on c.id = q.conversation_id
            left join lateral (select a.id, a.unanswered from assistants_message a
                               where a.conversation_id = q.conversation_id and a.role = 'assistant' and a.id > q.id
                               order by a.id limit 1) a on true
            left join assistants_feedback f on f.message_id = a.id and f.kind = 'rating')
    """

    @classmethod
    def raw_topics(cls, build_id: int) -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                cls.RAW_TOPIC_MEMBERS
                + """
                select topic, count(*), count(distinct visitor), count(*) filter (where unanswered),
                       count(*) filter (where down)
                from rows group by topic order by 2 desc, 3 desc, topic limit %s
                """,
                [build_id, selectors.PAGE_ROWS],
            )
            return cursor.fetchall()

    @classmethod
    def raw_gaps(cls, build_id: int) -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                cls.RAW_TOPIC_MEMBERS
                + """
                select topic, count(distinct visitor), count(*), count(*) filter (where unanswered),
                       count(*) filter (where down)
                from rows where unanswered or down group by topic order by 2 desc, 3 desc, topic limit %s
                """,
                [build_id, selectors.PAGE_ROWS],
            )
            return cursor.fetchall()

    def check_topics_equal(self, build) -> None:
        """The topic rows' stored counts are the raw tables' (else the benchmark compares nothing)."""
        from assistants.models import ContentGap, Topic

        stored = {
            t.pk: (t.questions, t.visitors, t.unanswered, t.rated_down)
            for t in Topic.objects.filter(build=build).only("questions", "visitors", "unanswered", "rated_down")
        }
        raw = self.raw_topics(build.pk)
        assert raw and all(stored[topic] == tuple(rest) for topic, *rest in raw), "topic counts differ"
        gaps = {
            g.topic_id: (g.visitors, g.questions, g.unanswered, g.rated_down)
            for g in ContentGap.objects.filter(topic__build=build)
        }
        raw = self.raw_gaps(build.pk)
        assert raw and all(gaps[topic] == tuple(rest) for topic, *rest in raw), "gap counts differ"

    def generate(self, assistants, rng: random.Random, options: dict) -> None:
        """Conversations of one to three turns, until ``--messages`` messages, spread over ``--days`` days."""
        now = timezone.now()
        span = options["days"] * 86400
        conversations, turns = [], []
        total = 0
        while total < options["messages"]:
            count = rng.choice((1, 1, 2, 3))
            start = now - dt.timedelta(seconds=rng.randrange(span))
            assistant = rng.choice(assistants)
            conversations.append(
                Conversation(
                    assistant=assistant,
                    visitor_token=f"bench{rng.getrandbits(48):x}",
                    page_url=rng.choice(PAGES) + ("?ref=x" if rng.random() < 0.1 else ""),
                    created_at=start,
                    updated_at=start,
                )
            )
            turns.append(count)
            total += 2 * count
        with created_at_as_given():
            Conversation.objects.bulk_create(conversations, batch_size=5000)
            messages, rated = [], []
            for conversation, count in zip(conversations, turns):
                at = conversation.created_at
                for turn in range(count):
                    messages.append(
                        Message(
                            conversation=conversation,
                            role="user",
                            text=f"question {turn} {rng.random():.6f}",
                            created_at=at,
                        )
                    )
                    at += dt.timedelta(seconds=rng.randint(5, 120))
                    messages.append(self.answer(conversation, at, rng))
                    at += dt.timedelta(seconds=rng.randint(5, 300))
            Message.objects.bulk_create(messages, batch_size=5000)
            for message in messages:
                if message.role == "assistant" and rng.random() < 0.12:
                    rated.append(
                        Feedback(
                            conversation=message.conversation,
                            message=message,
                            kind="rating",
                            rating=1 if rng.random() < 0.65 else -1,
                            created_at=message.created_at,
                            updated_at=message.created_at,
                        )
                    )
            Feedback.objects.bulk_create(rated, batch_size=5000)
            self.generate_handoffs_and_leads(conversations, random.Random(options["seed"] + 1))

    @staticmethod
    def generate_handoffs_and_leads(conversations, rng: random.Random) -> None:
        """A handoff for 5 % of the conversations (a reason at random) and a lead for 3 % (a score of
        0–100, on the conversation's page), with their own random stream: the messages stay those of
        the same seed in earlier runs."""
        from assistants.models import Handoff, Lead

        handoffs, leads = [], []
        for conversation in conversations:
            if rng.random() < 0.05:
                handoffs.append(
                    Handoff(
                        conversation=conversation,
                        reason=rng.choice(Handoff.Reason.values),
                        requested_at=conversation.created_at + dt.timedelta(seconds=rng.randint(30, 600)),
                    )
                )
            if rng.random() < 0.03:
                at = conversation.created_at + dt.timedelta(seconds=rng.randint(30, 900))
                leads.append(
                    Lead(
                        team_id=conversation.assistant.team_id,
                        assistant=conversation.assistant,
                        conversation=conversation,
                        email=f"lead{rng.getrandbits(32):x}@bench.example",
                        page_url=conversation.page_url,
                        score=rng.randint(0, 100),
                        created_at=at,
                        updated_at=at,
                    )
                )
        Handoff.objects.bulk_create(handoffs, batch_size=5000)
        Lead.objects.bulk_create(leads, batch_size=5000)
        with connection.cursor() as cursor:  # the planner's statistics, as autovacuum keeps them in a live table
            cursor.execute("analyze assistants_handoff, assistants_lead")

    @staticmethod
    def answer(conversation, at, rng: random.Random) -> Message:
        provider, model, price_in, price_out = rng.choice(MODELS)
        unanswered = rng.random() < 0.15
        error = "timeout" if not unanswered and rng.random() < 0.02 else ""
        usage = {}
        if provider != "extractive" and not error:
            prompt, completion = rng.randint(300, 3000), rng.randint(20, 400)
            usage = {
                "model": model,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cost_usd": round((prompt * price_in + completion * price_out) / 1_000_000, 8),
            }
        citations = (
            []
            if unanswered or error
            else [
                {"n": n + 1, "title": url.rsplit("/", 1)[-1], "url": url}
                for n, url in enumerate(rng.sample(PAGES[:120], rng.randint(1, 3)))
            ]
        )
        return Message(
            conversation=conversation,
            role="assistant",
            text="" if error else ("I don't know." if unanswered else "An answer."),
            citations=citations,
            timings={} if error else {"first_token_ms": rng.randint(80, 2500)},
            provider=provider,
            error=error,
            unanswered=unanswered,
            usage=usage,
            created_at=at,
        )

    # The same figures, computed on the raw tables.

    @staticmethod
    def raw_overview(assistant_ids: list[int], period) -> dict:
        low, high = period.bounds()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                select count(*) filter (where m.role = 'user'),
                       count(*) filter (where m.role = 'assistant'),
                       count(*) filter (where m.role = 'assistant' and m.unanswered),
                       count(*) filter (where m.role = 'assistant' and not m.unanswered and m.error = '' and m.text <> ''),
                       coalesce(sum((m.usage->>'prompt_tokens')::bigint), 0),
                       coalesce(sum((m.usage->>'completion_tokens')::bigint), 0),
                       coalesce(sum((m.usage->>'cost_usd')::float8), 0),
                       percentile_disc(0.5) within group (order by (m.timings->>'first_token_ms')::float8),
                       percentile_disc(0.95) within group (order by (m.timings->>'first_token_ms')::float8)
                from assistants_message m join assistants_conversation c on c.id = m.conversation_id
                where c.assistant_id = any(%s) and m.created_at >= %s and m.created_at < %s
                  and c.visitor_token not like 'gap-recheck-%%'
                """,
                [assistant_ids, low, high],
            )
            figures = cursor.fetchone()
            cursor.execute(
                """
                select count(*), count(*) filter (where
                    exists (select 1 from assistants_message a where a.conversation_id = c.id and a.role = 'assistant'
                            and not a.unanswered and a.error = '' and a.text <> '')
                    and not exists (select 1 from assistants_message a where a.conversation_id = c.id
                                    and a.role = 'assistant' and a.unanswered)
                    and not exists (select 1 from assistants_feedback f where f.conversation_id = c.id
                                    and f.kind = 'rating' and f.rating = -1)
                    and not exists (select 1 from assistants_handoff h where h.conversation_id = c.id))
                from assistants_conversation c
                where c.assistant_id = any(%s) and c.created_at >= %s and c.created_at < %s
                  and c.visitor_token not like 'gap-recheck-%%'
                """,
                [assistant_ids, low, high],
            )
            conversations, resolved = cursor.fetchone()
            cursor.execute(
                """
                select count(*) filter (where f.rating = 1), count(*) filter (where f.rating = -1)
                from assistants_feedback f join assistants_message m on m.id = f.message_id
                join assistants_conversation c on c.id = m.conversation_id
                where f.kind = 'rating' and c.assistant_id = any(%s) and m.created_at >= %s and m.created_at < %s
                """,
                [assistant_ids, low, high],
            )
            up, down = cursor.fetchone()
            cursor.execute(
                """
                select (m.created_at at time zone 'UTC')::date, count(*) filter (where m.role = 'user'),
                       count(*) filter (where m.role = 'assistant' and m.unanswered)
                from assistants_message m join assistants_conversation c on c.id = m.conversation_id
                where c.assistant_id = any(%s) and m.created_at >= %s and m.created_at < %s group by 1
                """,
                [assistant_ids, low, high],
            )
            cursor.fetchall()
            cursor.execute(
                """
                select split_part(split_part(c.page_url, '#', 1), '?', 1), count(*)
                from assistants_message m join assistants_conversation c on c.id = m.conversation_id
                where m.role = 'user' and c.page_url <> '' and c.assistant_id = any(%s)
                  and m.created_at >= %s and m.created_at < %s
                group by 1 order by 2 desc, split_part(split_part(c.page_url, '#', 1), '?', 1) collate "C" limit 20
                """,
                [assistant_ids, low, high],
            )
            pages = cursor.fetchall()
        questions, answers, unanswered, answered, tokens_in, tokens_out, cost, median, p95 = figures
        return {
            "conversations": conversations,
            "questions": questions,
            "answered_rate": metrics.ratio(answered, answers),
            "unanswered_rate": metrics.ratio(unanswered, answers),
            "resolved_rate": metrics.ratio(resolved, conversations),
            "satisfaction": metrics.ratio(up, up + down),
            "ttft_median": median,
            "ttft_p95": p95,
            "tokens_per_answer": metrics.ratio(tokens_in + tokens_out, answers),
            "cost": cost,
            "pages": pages,
        }

    @staticmethod
    def raw_sources(assistant_ids: list[int], period) -> list:
        low, high = period.bounds()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                select e.url, count(*), count(*) filter (where f.rating = 1), count(*) filter (where f.rating = -1),
                       max(m.created_at)
                from assistants_message m join assistants_conversation c on c.id = m.conversation_id
                cross join lateral (select distinct x->>'url' as url from jsonb_array_elements(m.citations) x) e
                left join assistants_feedback f on f.message_id = m.id and f.kind = 'rating'
                where m.role = 'assistant' and c.assistant_id = any(%s) and m.created_at >= %s and m.created_at < %s
                group by 1 order by 2 desc, 1
                """,
                [assistant_ids, low, high],
            )
            return cursor.fetchall()

    @staticmethod
    def raw_worst(assistant_ids: list[int], period) -> list:
        low, high = period.bounds()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                select c.id, greatest(0, least(100, 100 - 30 * f.down - 25 * m.u - 15 * m.e - 40 * h.handed
                    + 5 * f.up)) as quality
                from assistants_conversation c
                cross join lateral (
                    select exists (select 1 from assistants_handoff x where x.conversation_id = c.id)::int as handed) h
                cross join lateral (
                    select count(*) filter (where a.unanswered) as u,
                           count(*) filter (where not a.unanswered and a.error <> '') as e
                    from assistants_message a where a.conversation_id = c.id and a.role = 'assistant') m
                cross join lateral (
                    select count(*) filter (where r.rating = 1) as up, count(*) filter (where r.rating = -1) as down
                    from assistants_feedback r where r.conversation_id = c.id and r.kind = 'rating') f
                where c.assistant_id = any(%s) and c.created_at >= %s and c.created_at < %s
                  and c.visitor_token not like 'gap-recheck-%%' and (m.u > 0 or m.e > 0 or f.down > 0 or h.handed > 0)
                order by quality, c.created_at desc, c.id limit 50
                """,
                [assistant_ids, low, high],
            )
            worst = cursor.fetchall()
            cursor.execute(
                "select distinct on (conversation_id) conversation_id, text from assistants_message"
                " where conversation_id = any(%s) and role = 'user' order by conversation_id, created_at, id",
                [[row[0] for row in worst]],
            )
            cursor.fetchall()
        return worst

    def check_equal(self, assistant_ids: list[int], period) -> None:
        """The rollups and the raw tables give the same figures (else the benchmark compares nothing)."""
        rolled = selectors.overview(assistant_ids=assistant_ids, period=period)
        raw = self.raw_overview(assistant_ids, period)
        for key, value in raw.items():
            if key == "pages":
                assert [(row["url"], row["questions"]) for row in rolled["pages"]] == [tuple(p) for p in value], key
                continue
            mine = rolled["values"][key]
            assert (mine is None and value is None) or abs(float(mine) - float(value)) < 1e-6 * max(
                1.0, abs(float(value))
            ), (
                key,
                mine,
                value,
            )
        cited = {
            row["url"]: row["cited"]
            for row in selectors.source_usage(assistant_ids=assistant_ids, period=period)["cited"]
        }
        assert cited == {url: n for url, n, *_ in self.raw_sources(assistant_ids, period)}
        worst = selectors.worst_conversations(assistant_ids=assistant_ids, period=period)
        mine, raw_worst = [(row.conversation_id, row.quality) for row in worst], self.raw_worst(assistant_ids, period)
        assert mine == raw_worst, [pair for pair in zip(mine, raw_worst) if pair[0] != pair[1]][:5]
