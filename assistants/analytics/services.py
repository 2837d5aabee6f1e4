"""Analytics writes: the daily rollups (recomputed whole per assistant and day: idempotent), and the
incremental refresh that beat runs (``assistants.analytics.tasks.rollups_refresh_task``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.apps import apps
from django.db import connection, transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from assistants.models import AnalyticsCursor, Assistant, Conversation, DailyRollup, Feedback, Message

UTC = dt.UTC
# Rows written up to this long before a refresh started may commit after it read: read them again.
REFRESH_OVERLAP = dt.timedelta(minutes=5)
_LOCK_ID = 0x616E616C  # pg_advisory_xact_lock: one rollup writer at a time

# Hook for the handoff and lead tables that other branches add: each is counted per assistant and day
# from (app, model, path to the assistant, date field) once the model exists; until then 0 (tested).
EXTERNAL_COUNTS = {
    "handoffs": ("assistants", "Handoff", "conversation__assistant_id", "created_at"),
    "leads": ("assistants", "Lead", "conversation__assistant_id", "created_at"),
}


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants from ``start`` 00:00 to the day after ``end`` 00:00."""
    first = dt.datetime.combine(start, dt.time(), tzinfo=UTC)
    return first, dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def _blank() -> dict:
    return {
        "conversations": 0,
        "resolved": 0,
        "questions": 0,
        "answers": 0,
        "answered": 0,
        "unanswered": 0,
        "errors": 0,
        "thumbs_up": 0,
        "thumbs_down": 0,
        "handoffs": 0,
        "leads": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
        "first_token_ms": [],
        "by_model": {},
        "pages": {},
        "citations": {},
    }


def _page(url: str) -> str:
    """The page a conversation started on, without its query and fragment."""
    return url.split("#", 1)[0].split("?", 1)[0]


def _external_counts(assistant_ids: list[int], low: dt.datetime, high: dt.datetime) -> dict:
    """{(assistant_id, day): {"handoffs": n, "leads": n}} from the tables that exist (none yet)."""
    counts: dict = defaultdict(dict)
    for field, (app_label, model_name, assistant_path, date_field) in EXTERNAL_COUNTS.items():
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        rows = (
            model.objects.filter(
                **{f"{assistant_path}__in": assistant_ids, f"{date_field}__gte": low, f"{date_field}__lt": high}
            )
            .annotate(day=TruncDate(date_field, tzinfo=UTC))
            .values(assistant_path, "day")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            counts[(row[assistant_path], row["day"])][field] = row["n"]
    return counts


def rollups_compute(*, start: dt.date, end: dt.date, assistant_ids: list[int] | None = None) -> int:
    """Recompute the daily rollups of ``assistant_ids`` (all assistants when None) for every day from
    ``start`` to ``end`` (inclusive), replacing what was there: running it twice gives the same rows.
    Returns the number of rows stored (days without any activity have none)."""
    low, high = _bounds(start, end)
    if assistant_ids is None:
        assistant_ids = list(Assistant.objects.values_list("pk", flat=True))
    days: dict[tuple[int, dt.date], dict] = defaultdict(_blank)

    conversations = Conversation.objects.filter(
        assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high
    )
    answers = Message.objects.filter(conversation=OuterRef("pk"), role=Message.Role.ASSISTANT)
    external = _external_counts(assistant_ids, low, high)
    resolved_filter = Q(has_answer=True, has_unanswered=False, has_down=False)
    for row in (
        conversations.annotate(
            day=TruncDate("created_at", tzinfo=UTC),
            has_answer=Exists(answers.filter(unanswered=False, error="").exclude(text="")),
            has_unanswered=Exists(answers.filter(unanswered=True)),
            has_down=Exists(Feedback.objects.filter(conversation=OuterRef("pk"), kind="rating", rating=-1)),
        )
        .values("assistant_id", "day")
        .annotate(n=Count("pk"), resolved=Count("pk", filter=resolved_filter))
    ):
        day = days[(row["assistant_id"], row["day"])]
        day["conversations"] = row["n"]
        day["resolved"] = row["resolved"]
    handed_off = _handed_off_conversations(assistant_ids, low, high)
    if handed_off:  # a handoff unresolves its conversation (hook: no handoff table yet)
        for (assistant_id, day_of), n in handed_off.items():
            days[(assistant_id, day_of)]["resolved"] -= n

    messages = Message.objects.filter(
        conversation__assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high
    ).annotate(day=TruncDate("created_at", tzinfo=UTC))
    for assistant_id, day_of, page, n in (
        messages.filter(role=Message.Role.USER)
        .values_list("conversation__assistant_id", "day", "conversation__page_url")
        .annotate(n=Count("pk"))
    ):
        day = days[(assistant_id, day_of)]
        day["questions"] += n
        if page:
            key = _page(page)
            day["pages"][key] = day["pages"].get(key, 0) + n
    replies = messages.filter(role=Message.Role.ASSISTANT).annotate(
        empty=ExpressionWrapper(Q(text=""), output_field=BooleanField()),
        rating=Subquery(Feedback.objects.filter(message=OuterRef("pk"), kind="rating").values("rating")[:1]),
    )
    for (
        assistant_id,
        day_of,
        text_empty,
        error,
        unanswered,
        provider,
        usage,
        timings,
        cited,
        rating,
        at,
    ) in replies.values_list(
        "conversation__assistant_id",
        "day",
        "empty",
        "error",
        "unanswered",
        "provider",
        "usage",
        "timings",
        "citations",
        "rating",
        "created_at",
    ).iterator(chunk_size=5000):
        day = days[(assistant_id, day_of)]
        for url in dict.fromkeys(c.get("url", "") for c in cited or [] if isinstance(c, dict)):
            title = next(c.get("title", "") for c in cited if isinstance(c, dict) and c.get("url", "") == url)
            page = day["citations"].setdefault(url, {"title": title, "cited": 0, "up": 0, "down": 0, "last": ""})
            page["cited"] += 1
            page["up"] += rating == 1
            page["down"] += rating == -1
            page["last"] = max(page["last"], at.isoformat())
        day["answers"] += 1
        if unanswered:
            day["unanswered"] += 1
        elif error:
            day["errors"] += 1
        elif not text_empty:
            day["answered"] += 1
        usage = usage or {}
        tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        cost = float(usage.get("cost_usd") or 0.0)
        day["tokens_in"] += tokens_in
        day["tokens_out"] += tokens_out
        day["cost_usd"] += cost
        model_key = f"{provider or 'unknown'} · {usage['model']}" if usage.get("model") else provider or "unknown"
        figures = day["by_model"].setdefault(
            model_key, {"answers": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
        )
        figures["answers"] += 1
        figures["tokens_in"] += tokens_in
        figures["tokens_out"] += tokens_out
        figures["cost_usd"] += cost
        first = (timings or {}).get("first_token_ms")
        if isinstance(first, int | float):
            day["first_token_ms"].append(round(first))

    for assistant_id, day_of, rating, n in (
        Feedback.objects.filter(
            kind=Feedback.Kind.RATING,
            message__conversation__assistant_id__in=assistant_ids,
            message__created_at__gte=low,
            message__created_at__lt=high,
        )
        .annotate(day=TruncDate("message__created_at", tzinfo=UTC))
        .values_list("message__conversation__assistant_id", "day", "rating")
        .annotate(n=Count("pk"))
    ):
        days[(assistant_id, day_of)]["thumbs_up" if rating == 1 else "thumbs_down"] += n
    for key, figures in external.items():
        days[key].update(figures)

    rows = [
        DailyRollup(assistant_id=assistant_id, day=day_of, **{**figures, "cost_usd": round(figures["cost_usd"], 8)})
        for (assistant_id, day_of), figures in days.items()
    ]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        DailyRollup.objects.filter(assistant_id__in=assistant_ids, day__gte=start, day__lte=end).delete()
        DailyRollup.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _handed_off_conversations(assistant_ids: list[int], low: dt.datetime, high: dt.datetime) -> dict:
    """{(assistant_id, day): resolved conversations of that day that were handed off} (hook: {} while
    there is no handoff table)."""
    try:
        model = apps.get_model(*EXTERNAL_COUNTS["handoffs"][:2])
    except LookupError:
        return {}
    handed = model.objects.filter(conversation=OuterRef("pk"))
    answers = Message.objects.filter(conversation=OuterRef("pk"), role=Message.Role.ASSISTANT)
    rows = (
        Conversation.objects.filter(assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high)
        .filter(Exists(handed), Exists(answers.filter(unanswered=False, error="").exclude(text="")))
        .exclude(Exists(answers.filter(unanswered=True)))
        .exclude(Exists(Feedback.objects.filter(conversation=OuterRef("pk"), kind="rating", rating=-1)))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values_list("assistant_id", "day")
        .annotate(n=Count("pk"))
    )
    return {(assistant_id, day): n for assistant_id, day, n in rows}


def _touched(since: dt.datetime | None) -> dict[int, set[dt.date]]:
    """{assistant_id: days whose rollup changed since ``since``} (everything when None)."""
    touched: dict[int, set[dt.date]] = defaultdict(set)
    day = lambda field: TruncDate(field, tzinfo=UTC)  # noqa: E731
    messages = Message.objects.all() if since is None else Message.objects.filter(created_at__gte=since)
    for assistant_id, message_day, conversation_day in (
        messages.annotate(d=day("created_at"), c=day("conversation__created_at"))
        .values_list("conversation__assistant_id", "d", "c")
        .distinct()
    ):
        touched[assistant_id].update((message_day, conversation_day))
    ratings = Feedback.objects.filter(kind=Feedback.Kind.RATING, message__isnull=False)
    if since is not None:
        ratings = ratings.filter(updated_at__gte=since)
    for assistant_id, message_day, conversation_day in (
        ratings.annotate(d=day("message__created_at"), c=day("conversation__created_at"))
        .values_list("conversation__assistant_id", "d", "c")
        .distinct()
    ):
        touched[assistant_id].update((message_day, conversation_day))
    conversations = Conversation.objects.all() if since is None else Conversation.objects.filter(created_at__gte=since)
    for assistant_id, conversation_day in (
        conversations.annotate(c=day("created_at")).values_list("assistant_id", "c").distinct()
    ):
        touched[assistant_id].add(conversation_day)
    return touched


def rollups_refresh() -> int:
    """Recompute the days that changed since the last refresh (all days the first time); the
    incremental step beat runs. Returns the number of rollup rows stored."""
    started = timezone.now()
    cursor = AnalyticsCursor.objects.filter(name="rollups").first()
    since = cursor.at - REFRESH_OVERLAP if cursor else None
    stored = 0
    for assistant_id, days in _touched(since).items():
        stored += rollups_compute(start=min(days), end=max(days), assistant_ids=[assistant_id])
    AnalyticsCursor.objects.update_or_create(name="rollups", defaults={"at": started})
    return stored
