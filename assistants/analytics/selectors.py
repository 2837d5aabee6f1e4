"""Analytics reads for the pages and their exports. Every figure comes from the daily rollups and the
metric definitions (``metrics``); only the list of worst conversations reads conversations, one
period of one team's assistants, by index."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, Count, Exists, OuterRef, Q, When
from django.utils import timezone

from assistants.analytics import metrics
from assistants.models import ContentGap, Conversation, DailyRollup, Feedback, Message, Topic, TopicBuild
from ingestion.models import Document

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


def _rollups(assistant_ids: list[int], period: Period):
    return DailyRollup.objects.filter(assistant_id__in=assistant_ids, day__gte=period.start, day__lte=period.end)


def totals(*, assistant_ids: list[int], period: Period) -> dict:
    return metrics.totals_of(_rollups(assistant_ids, period), period.days)


def overview(*, assistant_ids: list[int], period: Period) -> dict:
    """The metrics of the period beside the previous one's, the questions per day and the top pages."""
    rows = list(_rollups(assistant_ids, period))
    current = metrics.totals_of(rows, period.days)
    previous = totals(assistant_ids=assistant_ids, period=period.previous())
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
    for row in rows:
        for name in ("questions", "unanswered", "conversations"):
            per_day[row.day][name] += getattr(row, name)
    pages = sorted(current["pages"].items(), key=lambda item: (-item[1], item[0]))[:20]
    models = sorted(current["by_model"].items(), key=lambda item: (-item[1]["answers"], item[0]))
    return {
        "cards": cards,
        "values": values,
        "totals": current,
        "series": [{"day": day, **figures} for day, figures in per_day.items()],
        "pages": [{"url": url, "questions": n} for url, n in pages],
        "models": [{"model": name, **figures} for name, figures in models],
        "has_data": bool(rows),
    }


def source_usage(*, assistant_ids: list[int], period: Period) -> dict:
    """Per cited page or document: times cited, cited in answers rated up and down, last cited; and
    the assistants' pages never cited in the period."""
    cited = totals(assistant_ids=assistant_ids, period=period)["citations"]
    rows = sorted(
        ({"url": url, **figures} for url, figures in cited.items()), key=lambda row: (-row["cited"], row["url"])
    )
    never = (
        Document.objects.filter(source__assistant_id__in=assistant_ids, status=Document.Status.READY)
        .exclude(url__in=list(cited))
        .order_by("title", "url")
        .values("title", "url", "source__assistant__name")
    )
    return {"cited": rows, "never": list(never[:500]), "never_count": never.count()}


def worst_conversations(*, assistant_ids: list[int], period: Period, limit: int = 50) -> list[Conversation]:
    """The period's conversations with the lowest quality score (``metrics.conversation_quality``), below 100."""
    low, high = period.bounds()
    replies = Message.objects.filter(conversation=OuterRef("pk"), role=Message.Role.ASSISTANT)
    conversations = (
        Conversation.objects.filter(assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high)
        .exclude(visitor_token__startswith=metrics.RECHECK_VISITOR_PREFIX)
        .filter(
            Exists(replies.filter(Q(unanswered=True) | ~Q(error="")))
            | Exists(Feedback.objects.filter(conversation=OuterRef("pk"), kind="rating", rating=-1))
        )
        .select_related("assistant")
        .annotate(
            unanswered_count=Count(
                "messages", filter=Q(messages__role="assistant", messages__unanswered=True), distinct=True
            ),
            error_count=Count(
                "messages",
                filter=Q(messages__role="assistant", messages__unanswered=False) & ~Q(messages__error=""),
                distinct=True,
            ),
            down_count=Count("feedback", filter=Q(feedback__kind="rating", feedback__rating=-1), distinct=True),
            up_count=Count("feedback", filter=Q(feedback__kind="rating", feedback__rating=1), distinct=True),
        )
    )
    scored = []
    for conversation in conversations[:2000]:
        conversation.quality = metrics.conversation_quality(
            down=conversation.down_count,
            unanswered=conversation.unanswered_count,
            errors=conversation.error_count,
            up=conversation.up_count,
        )
        scored.append(conversation)
    scored.sort(key=lambda c: (c.quality, -c.created_at.timestamp()))
    firsts = dict(
        Message.objects.filter(conversation__in=[c.pk for c in scored[:limit]], role=Message.Role.USER)
        .order_by("conversation_id", "created_at", "id")
        .distinct("conversation_id")
        .values_list("conversation_id", "text")
    )
    for conversation in scored[:limit]:
        conversation.first_question = firsts.get(conversation.pk, "")
    return scored[:limit]


def latest_builds(*, assistant_ids: list[int]) -> list[TopicBuild]:
    """Each assistant's latest finished topic build."""
    return list(
        TopicBuild.objects.filter(assistant_id__in=assistant_ids, status=TopicBuild.Status.DONE)
        .order_by("assistant_id", "-finished_at", "-id")
        .distinct("assistant_id")
        .select_related("assistant")
    )


def topics(*, assistant_ids: list[int]) -> tuple[list[TopicBuild], list[Topic]]:
    builds = latest_builds(assistant_ids=assistant_ids)
    rows = (
        Topic.objects.filter(build__in=builds)
        .select_related("build__assistant")
        .order_by("-questions", "-visitors", "label")
    )
    return builds, list(rows)


def gaps(*, assistant_ids: list[int], status: str = "") -> list[ContentGap]:
    rows = ContentGap.objects.filter(assistant_id__in=assistant_ids).select_related("assistant")
    if status:
        rows = rows.filter(status=status)
    first = Case(
        When(status=ContentGap.Status.OPEN, then=0), When(status=ContentGap.Status.CHECKING, then=1), default=2
    )
    return list(rows.order_by(first, "-visitors", "-questions", "pk"))
