"""Analytics reads for the pages and their exports. Every figure comes from the daily rollups and the
metric definitions (``metrics``); only the list of worst conversations reads conversations, one
period of one team's assistants, by index."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, Count, Exists, OuterRef, Q, Sum, When
from django.utils import timezone

from assistants.analytics import metrics
from assistants.models import (
    Assistant,
    ContentGap,
    ConversationQuality,
    DailyRollup,
    Message,
    TeamDailyRollup,
    Topic,
    TopicBuild,
)
from ingestion.models import Document, Source

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range(self.days)]

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        first = dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)
        return first, dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def default_period(today: dt.date | None = None) -> Period:
    today = today or timezone.now().date()
    return Period(today - dt.timedelta(days=DEFAULT_DAYS - 1), today)


@dataclass(frozen=True)
class _Scope:
    """Where a selection's rollup rows are: a whole team's (one row a day, ``TeamDailyRollup``) when
    the assistants are all of one team's, else the assistants' own rows."""

    model: type
    column: str
    ids: list[int]


def _scope(assistant_ids: list[int]) -> _Scope:
    ids = sorted(set(assistant_ids))
    if len(ids) > 1:
        teams = list(Assistant.objects.filter(pk__in=ids).values_list("team_id", flat=True).distinct())
        if len(teams) == 1 and Assistant.objects.filter(team_id=teams[0]).count() == len(ids):
            return _Scope(TeamDailyRollup, "team_id", teams)
    return _Scope(DailyRollup, "assistant_id", ids)


def _rollups(scope: _Scope, period: Period):
    return scope.model.objects.filter(**{f"{scope.column}__in": scope.ids}, day__gte=period.start, day__lte=period.end)


def _sql(query: str, scope: _Scope, period: Period, *extra) -> list[tuple]:
    where = f"r.{scope.column} = any(%s) and r.day between %s and %s"
    with connection.cursor() as cursor:
        cursor.execute(
            query.format(where=where, table=scope.model._meta.db_table),
            [list(scope.ids), period.start, period.end, *extra],
        )
        return cursor.fetchall()


def totals(*, assistant_ids: list[int], period: Period, scope: _Scope | None = None) -> dict:
    """The period's sums, computed by PostgreSQL over the rollup rows (the same dict as
    ``metrics.totals_of``, without the per-page and per-model breakdowns)."""
    scope = scope or _scope(assistant_ids)
    sums = _rollups(scope, period).aggregate(rows=Count("pk"), **{name: Sum(name) for name in metrics.COUNTERS})
    totals = metrics.empty_totals(period.days)
    totals.update({name: sums[name] or 0 for name in metrics.COUNTERS})
    totals["rows"] = sums["rows"]
    if sums["answers"]:
        # Nearest-rank percentiles: percentile_disc is the smallest sample at or above the fraction.
        totals["first_token_p50"], totals["first_token_p95"] = _sql(
            "select percentile_disc(0.5) within group (order by v), percentile_disc(0.95) within group"
            " (order by v) from {table} r, unnest(r.first_token_ms) v"
            " where {where}",
            scope,
            period,
        )[0]
    return totals


def overview(*, assistant_ids: list[int], period: Period) -> dict:
    """The metrics of the period beside the previous one's, the questions per day, the top pages and
    the models; aggregated by PostgreSQL over the rollup rows."""
    scope = _scope(assistant_ids)
    current = totals(assistant_ids=assistant_ids, period=period, scope=scope)
    previous = totals(assistant_ids=assistant_ids, period=period.previous(), scope=scope)
    values, before = metrics.compute(current), metrics.compute(previous)
    cards = [
        {
            "metric": metric,
            "value": values[metric.key],
            "previous": before[metric.key],
            "delta": metrics.delta(values[metric.key], before[metric.key]),
        }
        for metric in metrics.METRICS
    ]
    per_day = {day: {"questions": 0, "unanswered": 0, "conversations": 0} for day in period.dates()}
    for row in (
        _rollups(scope, period)
        .values("day")
        .annotate(questions=Sum("questions"), unanswered=Sum("unanswered"), conversations=Sum("conversations"))
    ):
        per_day[row["day"]].update(
            questions=row["questions"], unanswered=row["unanswered"], conversations=row["conversations"]
        )
    pages = _sql(
        "select p.key, sum(p.value::bigint) from {table} r, jsonb_each_text(r.pages) p where {where}"
        ' group by p.key order by 2 desc, p.key collate "C" limit 20',
        scope,
        period,
    )
    models = _sql(
        "select m.key, sum((m.value->>'answers')::bigint), sum((m.value->>'tokens_in')::bigint),"
        " sum((m.value->>'tokens_out')::bigint), sum((m.value->>'cost_usd')::float8)"
        " from {table} r, jsonb_each(r.by_model) m where {where} group by m.key order by 2 desc, 1",
        scope,
        period,
    )
    return {
        "cards": cards,
        "values": values,
        "totals": current,
        "series": [{"day": day, **figures} for day, figures in per_day.items()],
        "pages": [{"url": url, "questions": n} for url, n in pages],
        "models": [
            {"model": name, "answers": n, "tokens_in": t_in, "tokens_out": t_out, "cost_usd": cost}
            for name, n, t_in, t_out, cost in models
        ],
        "has_data": bool(current["rows"]),
    }


def source_usage(*, assistant_ids: list[int], period: Period) -> dict:
    """Per cited page or document: times cited, cited in answers rated up and down, last cited; and
    the assistants' pages never cited in the period."""
    scope = _scope(assistant_ids)
    cited = _sql(
        "select c.key, max(c.value->>'title'), sum((c.value->>'cited')::bigint), sum((c.value->>'up')::bigint),"
        " sum((c.value->>'down')::bigint), max(c.value->>'last')"
        " from {table} r, jsonb_each(r.citations) c where {where}"
        ' group by c.key order by 3 desc, c.key collate "C"',
        scope,
        period,
    )
    rows = [
        {
            "url": url,
            "title": title,
            "cited": n,
            "up": up,
            "down": down,
            "last": dt.datetime.fromisoformat(last) if last else None,
        }
        for url, title, n, up, down, last in cited
    ]
    never = (
        Document.objects.filter(source__assistant_id__in=assistant_ids, status=Document.Status.READY)
        .exclude(url__in=[row["url"] for row in rows])
        .order_by("title", "url")
        .values("title", "url", "source__assistant__name")
    )
    return {
        "cited": rows,
        "never": list(never[:500]),
        "never_count": never.count(),
        **_content_health(assistant_ids, rows),
    }


STALE_DAYS = 365  # a page its site says has not changed for this long ...
STALE_MIN_CITED = 3  # ... and cited this often in the period is worth a look


def _last_changed(modified: str, changed_at, created_at) -> tuple[dt.datetime, str] | None:
    """When a page's content last changed, and on what evidence: a change the crawls saw (its content
    hash differed from the stored one after it was first stored) is the content's own; else the site's
    Last-Modified when it sends one; else when the crawls first stored it (unchanged since)."""
    from email.utils import parsedate_to_datetime

    if changed_at is not None and changed_at - created_at > dt.timedelta(minutes=1):
        return changed_at, "crawl"
    if modified:
        try:
            header = parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            header = None
        if header is not None and header.tzinfo is not None:
            return header, "last_modified"
    if changed_at is not None:
        return changed_at, "crawl"
    return None


def _content_health(assistant_ids: list[int], cited: list[dict]) -> dict:
    """Beside the usage: cited pages whose content has not changed for STALE_DAYS (``_last_changed``:
    the content hash history as crawled, else their Last-Modified), and what the last crawl of each
    website source failed on or skipped (thin, duplicate, excluded pages, with the crawl report's
    reasons)."""
    often = {row["url"]: row for row in cited if row["cited"] >= STALE_MIN_CITED}
    limit = timezone.now() - dt.timedelta(days=STALE_DAYS)
    stale = []
    for url, title, modified, changed_at, created_at in Document.objects.filter(
        source__assistant_id__in=assistant_ids, url__in=list(often)
    ).values_list("url", "title", "last_modified", "content_changed_at", "created_at"):
        found = _last_changed(modified, changed_at, created_at)
        if found is not None and found[0] < limit:
            changed, basis = found
            stale.append({"url": url, "title": title, "changed": changed, "basis": basis, "cited": often[url]["cited"]})
    failed, skipped = [], []
    for source, report in Source.objects.filter(assistant_id__in=assistant_ids, last_run__isnull=False).values_list(
        "name", "last_run__report"
    ):
        for key, into in (("failed", failed), ("skipped", skipped)):
            for entry in (report or {}).get(key, [])[:200]:
                if isinstance(entry, dict):
                    into.append({"source": source, "url": entry.get("url", ""), "reason": entry.get("reason", "")})
    stale.sort(key=lambda row: (-row["cited"], row["url"]))
    return {"stale": stale, "crawl_failed": failed, "crawl_skipped": skipped}


def worst_conversations(*, assistant_ids: list[int], period: Period, limit: int = 50) -> list[ConversationQuality]:
    """The period's conversations with the lowest quality score (``metrics.conversation_quality``), below
    100, from the rollups' quality rows; each with its first question."""
    low, high = period.bounds()
    worst = list(
        ConversationQuality.objects.filter(assistant_id__in=assistant_ids, started_at__gte=low, started_at__lt=high)
        .select_related("conversation", "assistant")
        .order_by("quality", "-started_at", "pk")[:limit]
    )
    firsts = dict(
        Message.objects.filter(conversation__in=[row.conversation_id for row in worst], role=Message.Role.USER)
        .order_by("conversation_id", "created_at", "id")
        .distinct("conversation_id")
        .values_list("conversation_id", "text")
    )
    for row in worst:
        row.first_question = firsts.get(row.conversation_id, "")
    return worst


def latest_builds(*, assistant_ids: list[int]) -> list[TopicBuild]:
    """Each assistant's current build: of its finished ones, the one whose period ends last."""
    return list(
        TopicBuild.objects.filter(assistant_id__in=assistant_ids, status=TopicBuild.Status.DONE)
        .order_by("assistant_id", "-end", "-finished_at", "-id")
        .distinct("assistant_id")
        .select_related("assistant")
    )


def period_builds(*, assistant_ids: list[int], period: Period) -> list[TopicBuild]:
    """Each assistant's build for the period: of its finished builds (kept per period, up to
    ``services.KEEP_BUILDS``), the one sharing the most days with it (ties: the one ending last)."""
    best: dict[int, tuple[int, TopicBuild]] = {}
    for build in (
        TopicBuild.objects.filter(
            assistant_id__in=assistant_ids,
            status=TopicBuild.Status.DONE,
            start__lte=period.end,
            end__gte=period.start,
        )
        .select_related("assistant")
        .order_by("-end", "-finished_at", "-id")
    ):
        shared = (min(build.end, period.end) - max(build.start, period.start)).days + 1
        if build.assistant_id not in best or shared > best[build.assistant_id][0]:
            best[build.assistant_id] = (shared, build)
    return sorted((build for _, build in best.values()), key=lambda build: (build.assistant.name.lower(), build.pk))


# The Top questions and Content gaps pages list this many rows, largest first (an assistant with 50,000
# questions has ~2,000 topics); the CSV export has them all.
PAGE_ROWS = 200

FIGURES = ("questions", "visitors", "unanswered", "rated_down", "first_half", "second_half")

# A topic's figures over a period other than its build's: its questions (the stored question→topic
# assignment, ``Topic.message_ids``) asked in the period, their visitors and the trend's halves ...
_RANGED = """
select t.id, count(*), count(distinct c.visitor_token),
    count(*) filter (where m.created_at < %s), count(*) filter (where m.created_at >= %s)
from assistants_topic t
cross join lateral jsonb_array_elements_text(t.message_ids) e(v)
join assistants_message m on m.id = e.v::bigint
join assistants_conversation c on c.id = m.conversation_id
where t.build_id = any(%s) and m.created_at >= %s and m.created_at < %s
group by t.id
"""
# ... and, for the topics shown only, the answers that followed them (the conversation's next
# assistant message) unanswered or rated down: one lookup per question, so not for every topic.
_RANGED_FAILURES = """
select t.id, count(*) filter (where a.unanswered),
    count(*) filter (where exists (select 1 from assistants_feedback f where f.message_id = a.id
        and f.kind = 'rating' and f.rating = -1))
from assistants_topic t
cross join lateral jsonb_array_elements_text(t.message_ids) e(v)
join assistants_message m on m.id = e.v::bigint
left join lateral (select x.id, x.unanswered from assistants_message x where x.conversation_id = m.conversation_id
    and x.role = 'assistant' and x.id > m.id order by x.id limit 1) a on true
where t.id = any(%s) and m.created_at >= %s and m.created_at < %s
group by t.id
"""


def topics(
    *, assistant_ids: list[int], period: Period | None = None, limit: int | None = None
) -> tuple[list[TopicBuild], list[Topic], int]:
    """The period's builds (``period_builds``; without a period each assistant's current one), their
    topics most questions first (the first ``limit``, or all), and how many topics there are. A build
    of exactly the period shows its topics' own counts (stored by the build, kept by the joins); one of
    another period shows each topic's counts over the questions it holds that were asked in the period
    (``_RANGED``: ~50,000 assignment rows for an assistant with 50,000 questions, each by primary key;
    the failures, one lookup more per question, for the topics shown only, ``_RANGED_FAILURES``), and
    the topics with none are left out."""
    if period is None:
        builds = latest_builds(assistant_ids=assistant_ids)
    else:
        builds = period_builds(assistant_ids=assistant_ids, period=period)
    exact = [b.pk for b in builds if period is None or (b.start, b.end) == (period.start, period.end)]
    ranged = [b.pk for b in builds if b.pk not in exact]
    counts = {
        row[0]: row[1:]
        for row in Topic.objects.filter(build__in=exact).values_list("pk", *FIGURES)
        if row[1]  # a topic whose questions were all deleted
    }
    counted: set[int] = set()  # the topics counted over the period (their failures to count)
    if ranged:
        low, high = period.bounds()
        with connection.cursor() as cursor:
            cursor.execute(_RANGED, [low + (high - low) / 2, low + (high - low) / 2, ranged, low, high])
            for pk, questions, visitors, first, second in cursor.fetchall():
                counts[pk] = (questions, visitors, 0, 0, first, second)
                counted.add(pk)
    labels = dict(Topic.objects.filter(pk__in=list(counts)).values_list("pk", "label"))
    order = sorted(counts, key=lambda pk: (-counts[pk][0], -counts[pk][1], labels[pk], pk))
    shown = order[:limit] if limit is not None else order
    if counted:
        with connection.cursor() as cursor:
            cursor.execute(_RANGED_FAILURES, [[pk for pk in shown if pk in counted], low, high])
            for pk, unanswered, rated_down in cursor.fetchall():
                questions, visitors, _, _, first, second = counts[pk]
                counts[pk] = (questions, visitors, unanswered, rated_down, first, second)
    rows = {
        topic.pk: topic
        for topic in Topic.objects.filter(pk__in=shown)
        .defer("message_ids", "centroid")  # a build of 50,000 questions: 2,000 vectors and 50,000 ids not shown
        .select_related("build__assistant")
    }
    listed = []
    for pk in shown:
        topic = rows[pk]
        for name, value in zip(FIGURES, counts[pk], strict=True):
            setattr(topic, name, value)
        listed.append(topic)
    return builds, listed, len(order)


def gaps(
    *, assistant_ids: list[int], status: str = "", period: Period | None = None, limit: int | None = None
) -> tuple[list[ContentGap], int]:
    """The gaps (with a period: those of a topic built for exactly the period, or holding a question
    asked in it), open ones first, then being
    re-checked, then closed, most visitors first within each (the first ``limit``, or all), and how many
    there are."""
    from assistants.models import GapQuestion

    rows = ContentGap.objects.filter(assistant_id__in=assistant_ids)
    if status:
        rows = rows.filter(status=status)
    if period is not None:
        low, high = period.bounds()
        rows = rows.filter(
            Q(topic__build__start=period.start, topic__build__end=period.end)
            | Exists(
                GapQuestion.objects.filter(
                    gap=OuterRef("pk"), message__created_at__gte=low, message__created_at__lt=high
                )
            )
        )
    total = rows.count() if limit is not None else None
    first = Case(
        When(status=ContentGap.Status.OPEN, then=0), When(status=ContentGap.Status.CHECKING, then=1), default=2
    )
    rows = rows.defer("proposal").select_related("assistant").order_by(first, "-visitors", "-questions", "pk")
    listed = list(rows[:limit] if limit is not None else rows)
    return listed, len(listed) if total is None else total


def _counts_by(rows, key) -> dict:
    counts: dict = {}
    for row in rows:
        counts[key(row)] = counts.get(key(row), 0) + row["n"]
    return counts


def handoff_reasons(*, assistant_ids: list[int], period: Period) -> dict:
    """The handoffs of the period and of the previous one by reason (``Handoff.reason``), for the
    selection and per assistant. A handoff counts on the UTC day it was requested, as in the rollups'
    ``handoffs``, so the reasons sum to that figure. Read from the handoff table (a few rows a day,
    by the conversation's assistant)."""
    from assistants.models import Handoff

    def grouped(p: Period):
        low, high = p.bounds()
        return list(
            Handoff.objects.filter(
                conversation__assistant_id__in=assistant_ids, requested_at__gte=low, requested_at__lt=high
            )
            .exclude(conversation__visitor_token__startswith=metrics.RECHECK_VISITOR_PREFIX)
            .values("conversation__assistant_id", "reason")
            .annotate(n=Count("pk"))
        )

    now, before = grouped(period), grouped(period.previous())
    total_now = sum(row["n"] for row in now)
    by_reason_now = _counts_by(now, lambda r: r["reason"])
    by_reason_before = _counts_by(before, lambda r: r["reason"])
    reasons = [
        {
            "reason": value,
            "label": label,
            "count": by_reason_now.get(value, 0),
            "previous": by_reason_before.get(value, 0),
            "delta": by_reason_now.get(value, 0) - by_reason_before.get(value, 0),
            "share": metrics.ratio(by_reason_now.get(value, 0), total_now),
        }
        for value, label in Handoff.Reason.choices
    ]
    names = dict(Assistant.objects.filter(pk__in=assistant_ids).values_list("pk", "name"))
    pair_now = _counts_by(now, lambda r: (r["conversation__assistant_id"], r["reason"]))
    pair_before = _counts_by(before, lambda r: (r["conversation__assistant_id"], r["reason"]))
    labels = dict(Handoff.Reason.choices)
    per_assistant = sorted(
        (
            {
                "assistant": names.get(pk, ""),
                "reason": reason,
                "label": labels.get(reason, reason),
                "count": pair_now.get((pk, reason), 0),
                "previous": pair_before.get((pk, reason), 0),
            }
            for pk, reason in set(pair_now) | set(pair_before)
        ),
        key=lambda row: (row["assistant"].lower(), -row["count"], row["label"]),
    )
    return {
        "reasons": reasons,
        "per_assistant": per_assistant,
        "total": total_now,
        "total_previous": sum(row["n"] for row in before),
    }


# Lead quality: the period's leads by score bucket (``Lead.score``, 0–100), page and topic.
LEAD_BUCKETS = ((0, 24), (25, 49), (50, 74), (75, 100))
LEAD_ROWS = 20  # pages and topics listed, most leads first


def lead_quality(*, assistant_ids: list[int], period: Period, page_rows: int | None = LEAD_ROWS) -> dict:
    """The leads created in the period (UTC days, as the rollups' ``leads``): how many fall in each
    score bucket (and in the previous period), and per page (the address without its query, the top
    ``page_rows``, all with None) and per topic (the latest build's topics holding one of the lead's conversation's
    questions; a lead counts once per topic) the leads and their average score."""
    from assistants.models import Lead

    def rows(p: Period):
        low, high = p.bounds()
        return Lead.objects.filter(assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high)

    def buckets(p: Period) -> list[int]:
        counts = rows(p).aggregate(
            **{f"b{low}": Count("pk", filter=Q(score__gte=low, score__lte=high)) for low, high in LEAD_BUCKETS}
        )
        return [counts[f"b{low}"] for low, _ in LEAD_BUCKETS]

    now, before = buckets(period), buckets(period.previous())
    low, high = period.bounds()
    with connection.cursor() as cursor:
        cursor.execute(
            "select p.page, count(*), avg(p.score) from (select split_part(split_part(l.page_url, '#', 1), '?', 1)"
            " page, l.score from assistants_lead l where l.assistant_id = any(%s) and l.created_at >= %s"
            " and l.created_at < %s and l.page_url <> '') p"
            ' group by p.page order by 2 desc, p.page collate "C" limit %s',
            [list(assistant_ids), low, high, page_rows],  # limit null: all (the API pages them)
        )
        pages = cursor.fetchall()
        builds = [build.pk for build in latest_builds(assistant_ids=assistant_ids)]
        cursor.execute(
            "select t.id, t.label, a.name, count(distinct l.id), avg(l.score), t.assistant_id from assistants_lead l"
            " join assistants_message m on m.conversation_id = l.conversation_id and m.role = %s"
            " join assistants_topic t on t.build_id = any(%s) and t.message_ids @> jsonb_build_array(m.id)"
            " join assistants_assistant a on a.id = t.assistant_id"
            " where l.assistant_id = any(%s) and l.created_at >= %s and l.created_at < %s"
            " group by t.id, t.label, a.name, t.assistant_id order by 4 desc, 5 desc, t.id limit %s",
            [Message.Role.USER, builds, list(assistant_ids), low, high, LEAD_ROWS],
        )
        topics = cursor.fetchall()
    return {
        "buckets": [
            {"label": f"{lo}–{hi}", "low": lo, "high": hi, "count": n, "previous": p}
            for (lo, hi), n, p in zip(LEAD_BUCKETS, now, before, strict=True)
        ],
        "total": sum(now),
        "pages": [{"url": url, "leads": n, "average": float(avg)} for url, n, avg in pages],
        "topics": [
            {"topic_id": pk, "label": label, "assistant": name, "assistant_id": a_id, "leads": n, "average": float(avg)}
            for pk, label, name, n, avg, a_id in topics
        ],
        "has_topics": bool(builds),
    }
