"""Analytics writes: the daily rollups (recomputed whole per assistant and day: idempotent), and the
incremental refresh that beat runs (``assistants.analytics.tasks.rollups_refresh_task``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.apps import apps
from django.db import connection, transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from assistants.analytics import metrics
from assistants.models import (
    AnalyticsCursor,
    Assistant,
    ContentGap,
    Conversation,
    ConversationQuality,
    DailyRollup,
    Feedback,
    GapQuestion,
    Message,
    QuestionEmbedding,
    TeamDailyRollup,
    Topic,
    TopicBuild,
)

logger = logging.getLogger(__name__)
RECHECK_VISITOR_PREFIX = metrics.RECHECK_VISITOR_PREFIX
UTC = dt.UTC
# Rows written up to this long before a refresh started may commit after it read: read them again.
REFRESH_OVERLAP = dt.timedelta(minutes=5)
_LOCK_ID = 0x616E616C  # pg_advisory_xact_lock: one rollup writer at a time

# Hook for the handoff and lead tables that other branches add: each is counted per assistant and day
# from (app, model, path to the assistant, date field) once the model exists; until then 0 (tested).
EXTERNAL_COUNTS = {
    "handoffs": ("assistants", "Handoff", "conversation__assistant_id", "requested_at"),
    "leads": ("assistants", "Lead", "assistant_id", "created_at"),
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
    ).exclude(visitor_token__startswith=RECHECK_VISITOR_PREFIX)
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

    messages = (
        Message.objects.filter(conversation__assistant_id__in=assistant_ids, created_at__gte=low, created_at__lt=high)
        .exclude(conversation__visitor_token__startswith=RECHECK_VISITOR_PREFIX)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
    )
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
    scored = _conversation_qualities(conversations)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        DailyRollup.objects.filter(assistant_id__in=assistant_ids, day__gte=start, day__lte=end).delete()
        DailyRollup.objects.bulk_create(rows, batch_size=1000)
        ConversationQuality.objects.filter(
            assistant_id__in=assistant_ids, started_at__gte=low, started_at__lt=high
        ).delete()
        ConversationQuality.objects.bulk_create(scored, batch_size=1000)
        team_ids = set(Assistant.objects.filter(pk__in=assistant_ids).values_list("team_id", flat=True))
        team_rollups_compute(team_ids=team_ids, start=start, end=end)
    return len(rows)


def team_rollups_compute(*, team_ids, start: dt.date, end: dt.date) -> int:
    """Recompute the teams' daily rollups from ``start`` to ``end`` (inclusive) as the sums of their
    assistants' rows of each day (``metrics.rollup_sum``), replacing what was there: idempotent. Run by
    ``rollups_compute`` right after it stores the assistants' rows. Returns the number of rows stored."""
    by_day: dict[tuple[int, dt.date], list] = defaultdict(list)
    for row in (
        DailyRollup.objects.filter(assistant__team_id__in=team_ids, day__gte=start, day__lte=end)
        .annotate(team_id=F("assistant__team_id"))
        .order_by("assistant_id", "day")
    ):
        by_day[(row.team_id, row.day)].append(row)
    rows = [
        TeamDailyRollup(team_id=team_id, day=day_of, **metrics.rollup_sum(day_rows))
        for (team_id, day_of), day_rows in by_day.items()
    ]
    with transaction.atomic():
        TeamDailyRollup.objects.filter(team_id__in=team_ids, day__gte=start, day__lte=end).delete()
        TeamDailyRollup.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _conversation_qualities(conversations) -> list[ConversationQuality]:
    """A quality row for each of ``conversations`` with an unanswered, failed or down-rated answer or a
    handoff (the others score 100 and are not listed)."""
    signals: dict[int, dict] = defaultdict(lambda: {"unanswered": 0, "errors": 0, "thumbs_up": 0, "thumbs_down": 0})
    for conversation_id, unanswered, errors in (
        Message.objects.filter(conversation__in=conversations, role=Message.Role.ASSISTANT)
        .values("conversation_id")
        .annotate(u=Count("pk", filter=Q(unanswered=True)), e=Count("pk", filter=Q(unanswered=False) & ~Q(error="")))
        .filter(Q(u__gt=0) | Q(e__gt=0))
        .values_list("conversation_id", "u", "e")
    ):
        signals[conversation_id].update(unanswered=unanswered, errors=errors)
    # The handed-off conversations before the ratings: a handed-off conversation's thumbs up count too.
    handed = set()
    try:
        handoff = apps.get_model(*EXTERNAL_COUNTS["handoffs"][:2])
    except LookupError:  # the hook: no handoff table yet
        handoff = None
    if handoff is not None:
        handed = set(handoff.objects.filter(conversation__in=conversations).values_list("conversation_id", flat=True))
        for conversation_id in handed:
            signals[conversation_id]
    for conversation_id, up, down in (
        Feedback.objects.filter(conversation__in=conversations, kind=Feedback.Kind.RATING)
        .values("conversation_id")
        .annotate(up=Count("pk", filter=Q(rating=1)), down=Count("pk", filter=Q(rating=-1)))
        .values_list("conversation_id", "up", "down")
    ):
        if down or conversation_id in signals:
            signals[conversation_id].update(thumbs_up=up, thumbs_down=down)
    started = dict(conversations.filter(pk__in=list(signals)).values_list("pk", "created_at"))
    owners = dict(conversations.filter(pk__in=list(signals)).values_list("pk", "assistant_id"))
    return [
        ConversationQuality(
            conversation_id=conversation_id,
            assistant_id=owners[conversation_id],
            started_at=started[conversation_id],
            handed_off=conversation_id in handed,
            quality=metrics.conversation_quality(
                down=figures["thumbs_down"],
                unanswered=figures["unanswered"],
                errors=figures["errors"],
                up=figures["thumbs_up"],
                handed_off=conversation_id in handed,
            ),
            **figures,
        )
        for conversation_id, figures in signals.items()
        if conversation_id in started
    ]


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


# Question embeddings, topics and content gaps.

TOPIC_DAYS = 30  # the nightly rebuild's period
GAP_QUESTIONS = 20  # at most this many of a gap's questions are asked again
# The gaps with most visitors are classified by searching the content now; the others (a long tail)
# from the evidence their answers recorded, so a build of 50,000 questions stays within minutes.
GAP_SEARCHED = 100
# With a model configured, the outline of the missing page is written by it for this many gaps (most
# visitors first) per build; the others keep the draft of questions and passages.
GAP_WRITTEN = 10
OUTLINE_MAX_TOKENS = 500
RECHECK_WAIT_RETRIES = 60  # a re-check waits for content still being indexed (3 s apart)


def question_embed(*, message_id: int) -> bool:
    """Embed a visitor question once, in its assistant's active embedding model (on a worker)."""
    from ingestion.embedding import get_embedder
    from ingestion.spaces import space_active

    message = Message.objects.filter(pk=message_id, role=Message.Role.USER).select_related("conversation").first()
    if message is None or QuestionEmbedding.objects.filter(message_id=message_id).exists():
        return False
    if message.conversation.visitor_token.startswith(RECHECK_VISITOR_PREFIX):
        return False  # a gap's question asked again: counts nowhere (its conversation is removed)
    space = space_active(message.conversation.assistant_id)
    if space is None:
        return False
    vector = get_embedder(space.model_name).embed_queries([message.text])[0]
    QuestionEmbedding.objects.get_or_create(
        message=message,
        defaults={
            "assistant_id": message.conversation.assistant_id,
            "model_name": space.model_name,
            "vector": [float(x) for x in vector],
        },
    )
    return True


def topic_join(*, message_id: int) -> Topic | None:
    """Between rebuilds, a newly embedded question joins the nearest topic of its assistant's latest build
    when its average cosine distance to the topic's questions is within the build's threshold (else it waits for
    the next rebuild). The topic's questions, visitors and trend count it, and its failure counts and gap
    are counted again (``topic_failures_refresh``: the answer may be in already); its centroid, label
    and key terms are left to the rebuild. Safe to run again: a question already in one of
    the build's topics changes nothing. Returns the topic joined, or None."""
    import numpy as np
    from pgvector.django import MaxInnerProduct

    embedding = QuestionEmbedding.objects.filter(message_id=message_id).select_related("message__conversation").first()
    if embedding is None or embedding.message.conversation.visitor_token.startswith(RECHECK_VISITOR_PREFIX):
        return None
    build = current_build(embedding.assistant_id, model_name=embedding.model_name)
    if build is None:
        return None
    vector = np.asarray(embedding.vector, dtype=float)
    vector = [float(x) for x in vector / (np.linalg.norm(vector) or 1.0)]
    # The centroid is the mean of the topic's unit vectors: 1 - x·centroid is the average cosine distance
    # from the question to the topic's questions, the clustering's own linkage (pgvector's <#> is -x·c).
    closest = (
        Topic.objects.filter(build=build, centroid__isnull=False)
        .annotate(negative=MaxInnerProduct("centroid", vector))
        .order_by("negative", "pk")
        .values_list("pk", "negative")
        .first()
    )
    if closest is None or 1.0 + closest[1] > build.threshold:
        return None
    message = embedding.message
    with transaction.atomic():
        topic = Topic.objects.select_for_update().get(pk=closest[0])  # one join at a time per topic
        if Topic.objects.filter(build=build, message_ids__contains=[message_id]).exists():
            return None  # clustered by the build, or joined already
        low, high = _bounds(build.start, build.end)
        asked_before = Message.objects.filter(
            pk__in=topic.message_ids, conversation__visitor_token=message.conversation.visitor_token
        ).exists()
        topic.message_ids = [*topic.message_ids, message_id]
        topic.questions += 1
        topic.joined += 1
        topic.visitors += not asked_before
        if message.created_at < low + (high - low) / 2:
            topic.first_half += 1
        else:
            topic.second_half += 1
        topic.save(update_fields=["message_ids", "questions", "joined", "visitors", "first_half", "second_half"])
        _topic_failures_count(build, topic, message_id)  # its answer may be in already; else it counts when it comes
    return topic


def topics_build_queue(*, assistant: Assistant, start: dt.date, end: dt.date) -> TopicBuild:
    from assistants.analytics.tasks import topics_build_task

    build = TopicBuild.objects.create(assistant=assistant, start=start, end=end)
    transaction.on_commit(lambda: topics_build_task.delay(build.pk))
    return build


def topics_rebuild_due() -> int:
    """The nightly rebuild: the last TOPIC_DAYS days of every assistant with questions in them."""
    end = timezone.now().date()
    start = end - dt.timedelta(days=TOPIC_DAYS - 1)
    low, _ = _bounds(start, end)
    ids = (
        Message.objects.filter(role=Message.Role.USER, created_at__gte=low)
        .values_list("conversation__assistant_id", flat=True)
        .distinct()
    )
    count = 0
    for assistant in Assistant.objects.filter(pk__in=list(ids)):
        topics_build_queue(assistant=assistant, start=start, end=end)
        count += 1
    return count


def _questions(assistant_id: int, low: dt.datetime, high: dt.datetime) -> list[tuple]:
    """The period's questions: (id, text, visitor, created_at, answer id, answer unanswered, its rating)."""
    return _question_rows(
        Message.objects.filter(
            conversation__assistant_id=assistant_id, role=Message.Role.USER, created_at__gte=low, created_at__lt=high
        ).exclude(conversation__visitor_token__startswith=RECHECK_VISITOR_PREFIX)
    )


def _question_rows(questions) -> list[tuple]:
    """(id, text, visitor, created_at, answer id, answer unanswered, its rating) of each question: its
    answer is the conversation's first assistant message after it."""
    answer = Message.objects.filter(
        conversation=OuterRef("conversation"), role=Message.Role.ASSISTANT, id__gt=OuterRef("pk")
    ).order_by("id")
    rows = list(
        questions.annotate(
            answer_id=Subquery(answer.values("pk")[:1]), answer_unanswered=Subquery(answer.values("unanswered")[:1])
        )
        .values_list("pk", "text", "conversation__visitor_token", "created_at", "answer_id", "answer_unanswered")
        .order_by("pk")
    )
    ratings = dict(
        Feedback.objects.filter(kind=Feedback.Kind.RATING, message_id__in=[r[4] for r in rows if r[4]]).values_list(
            "message_id", "rating"
        )
    )
    return [(*row, ratings.get(row[4])) for row in rows]


def topic_failures_refresh(*, message_id: int) -> Topic | None:
    """Between rebuilds, a question of the latest build's topics (clustered or joined) got its answer or
    a rating (``message_id``: the question, or its answer): its topic's unanswered and rated-down counts
    are counted again from its questions' answers, and so is its open content gap — found, updated, or
    opened for a topic failing for the first time (its kind from what the failed answers recorded, the
    draft fix; the rebuild searches and writes it). Counted again, not added to: safe to run again.
    Returns the topic, or None when the question is in none."""
    message = (
        Message.objects.filter(pk=message_id)
        .values_list("pk", "role", "conversation_id", "conversation__assistant_id")
        .first()
    )
    if message is None:
        return None
    question_id, role, conversation_id, assistant_id = message
    if role != Message.Role.USER:
        question_id = (
            Message.objects.filter(conversation_id=conversation_id, role=Message.Role.USER, id__lt=message_id)
            .order_by("-id")
            .values_list("pk", flat=True)
            .first()
        )
        if question_id is None:
            return None
    build = current_build(assistant_id)
    if build is None:
        return None
    found = Topic.objects.filter(build=build, message_ids__contains=[question_id]).values_list("pk", flat=True).first()
    if found is None:
        return None
    with transaction.atomic():
        topic = Topic.objects.select_for_update().get(pk=found)  # one count at a time per topic
        _topic_failures_count(build, topic, question_id)
    return topic


def _topic_failures_count(build: TopicBuild, topic: Topic, question_id: int) -> None:
    """The topic's unanswered and rated-down counts, and its open gap, from its questions' answers now
    (the caller holds the topic's row lock). A topic without an open gap gets one only when
    ``question_id`` itself failed, from the failures since its last gap closed (the questions a closed
    gap was about stay failed in their first answers: they do not open it again)."""
    rows = _question_rows(Message.objects.filter(pk__in=topic.message_ids))
    failing = [row for row in rows if row[5] or row[6] == -1]
    unanswered = sum(1 for row in rows if row[5])
    rated_down = sum(1 for row in rows if row[6] == -1)
    if (topic.unanswered, topic.rated_down) != (unanswered, rated_down):
        topic.unanswered, topic.rated_down = unanswered, rated_down
        topic.save(update_fields=["unanswered", "rated_down"])
    gap = (
        ContentGap.objects.select_for_update()
        .filter(topic=topic, status__in=[ContentGap.Status.OPEN, ContentGap.Status.CHECKING])
        .order_by("pk")
        .first()
    )
    if gap is None:
        if not any(row[0] == question_id for row in failing):
            return
        # Its last closed gap: of this topic, or (after a rebuild made new topics) holding one of its questions.
        last = (
            ContentGap.objects.filter(
                Q(topic=topic) | Q(checks__message_id__in=topic.message_ids),
                assistant_id=build.assistant_id,
                status=ContentGap.Status.CLOSED,
                closed_at__isnull=False,
            )
            .order_by("-closed_at")
            .values_list("closed_at", flat=True)
            .first()
        )
        if last is not None:
            failing = [row for row in failing if row[3] >= last or row[0] == question_id]
    if not failing:
        return
    order = {pk: index for index, pk in enumerate(topic.message_ids)}  # the build's order: most central first
    failing.sort(key=lambda row: order.get(row[0], len(order)))
    figures = {
        "visitors": len({row[2] for row in failing}),
        "questions": len(failing),
        "unanswered": sum(1 for row in failing if row[5]),
        "rated_down": sum(1 for row in failing if row[6] == -1),
    }
    if gap is None:
        texts = list(dict.fromkeys(" ".join(row[1].split()) for row in failing))
        found = {"best_title": "", "best_url": "", "best_rank": None, "best_score": None, **_recorded_kind(failing)}
        gap = ContentGap.objects.create(
            assistant_id=build.assistant_id,
            topic=topic,
            label=topic.label,
            terms=topic.terms,
            proposal=_proposal(topic.label, texts, [], found["kind"]),
            **figures,
            **found,
        )
    elif any(getattr(gap, name) != value for name, value in figures.items()):
        ContentGap.objects.filter(pk=gap.pk).update(**figures)
    _gap_questions_add(gap, failing)


def _recorded_kind(failing: list[tuple]) -> dict:
    """A gap's kind from what its failed answers recorded (``grounding.retrieval`` and citations): no
    page covers it when most of them found only weak evidence, else the page they cited most, with its
    citation rank and the best similarity."""
    answers = Message.objects.filter(pk__in=[row[4] for row in failing if row[4]]).values_list(
        "grounding__retrieval", "citations"
    )
    weak, pages, similarity = 0, {}, None
    for retrieval, citations in answers:
        retrieval = retrieval if isinstance(retrieval, dict) else {}
        weak += bool(retrieval.get("weak"))
        if isinstance(retrieval.get("similarity"), int | float):
            similarity = max(similarity or 0.0, float(retrieval["similarity"]))
        for rank, cited in enumerate(citations or [], start=1):
            if isinstance(cited, dict) and cited.get("url"):
                count, best_rank, title = pages.get(cited["url"], (0, rank, cited.get("title", "")))
                pages[cited["url"]] = (count + 1, min(best_rank, rank), title)
    if not pages or weak * 2 > len(answers):
        return {"kind": ContentGap.Kind.NO_PAGE, "best_score": similarity}
    url, (_, rank, title) = max(pages.items(), key=lambda item: (item[1][0], -item[1][1]))
    return {
        "kind": ContentGap.Kind.ANSWER_FAILED,
        "best_title": str(title)[:500],
        "best_url": url[:2000],
        "best_rank": rank,
        "best_score": similarity,
    }


def topics_build(*, build_id: int, searched: int = GAP_SEARCHED) -> TopicBuild | None:
    """Cluster the build's period of questions into topics and derive the content gaps (safe to run
    again); a build that fails is marked failed with the reason. ``searched``: how many gaps (most
    visitors first) are classified by searching the content; the others from their answers' records."""
    try:
        return _topics_build(build_id, searched)
    except Exception as exc:
        TopicBuild.objects.filter(pk=build_id).update(
            status=TopicBuild.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        raise


def _topics_build(build_id: int, searched: int) -> TopicBuild | None:
    import time

    from assistants.analytics import topics as clustering
    from ingestion.embedding import get_embedder
    from ingestion.spaces import space_active

    build = TopicBuild.objects.select_related("assistant").filter(pk=build_id).first()
    if build is None or build.status == TopicBuild.Status.DONE:
        return build
    started = time.perf_counter()
    TopicBuild.objects.filter(pk=build.pk).update(status=TopicBuild.Status.RUNNING)
    space = space_active(build.assistant_id)
    low, high = _bounds(build.start, build.end)
    rows = _questions(build.assistant_id, low, high)
    vectors = {}
    if space is not None and rows:
        vectors = dict(
            QuestionEmbedding.objects.filter(
                message_id__in=[r[0] for r in rows], model_name=space.model_name
            ).values_list("message_id", "vector")
        )
        missing = [r for r in rows if r[0] not in vectors]  # made before the space, or their task was lost
        if missing:
            made = get_embedder(space.model_name).embed_queries([r[1] for r in missing])
            QuestionEmbedding.objects.bulk_create(
                [
                    QuestionEmbedding(
                        message_id=r[0],
                        assistant_id=build.assistant_id,
                        model_name=space.model_name,
                        vector=[float(x) for x in v],
                    )
                    for r, v in zip(missing, made)
                ],
                ignore_conflicts=True,
            )
            vectors.update({r[0]: [float(x) for x in v] for r, v in zip(missing, made)})
    rows = [r for r in rows if r[0] in vectors]
    labels = clustering.cluster([vectors[r[0]] for r in rows]) if rows else []
    centres = clustering.centroids([vectors[r[0]] for r in rows], labels) if rows else []
    groups: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        groups[int(label)].append(index)
    members = [groups[k] for k in sorted(groups)]
    terms = clustering.key_terms([r[1] for r in rows], members)
    middle = low + (high - low) / 2
    topics = []
    for number, (group, group_terms) in enumerate(zip(members, terms)):
        order = [group[i] for i in clustering.central([vectors[rows[i][0]] for i in group])]
        failing = [rows[i] for i in order if rows[i][5] or rows[i][6] == -1]
        topics.append(
            (
                Topic(
                    build=build,
                    assistant_id=build.assistant_id,
                    label=rows[order[0]][1][:1000],
                    terms=group_terms,
                    questions=len(group),
                    visitors=len({rows[i][2] for i in group}),
                    unanswered=sum(1 for i in group if rows[i][5]),
                    rated_down=sum(1 for i in group if rows[i][6] == -1),
                    first_half=sum(1 for i in group if rows[i][3] < middle),
                    second_half=sum(1 for i in group if rows[i][3] >= middle),
                    message_ids=[rows[i][0] for i in order],
                    examples=list(dict.fromkeys(rows[i][1][:300] for i in order))[:5],
                    centroid=[float(x) for x in centres[number]],
                ),
                failing,
            )
        )
    with transaction.atomic():
        _builds_replaced(build)
        Topic.objects.filter(build=build).delete()
        Topic.objects.bulk_create([topic for topic, _ in topics])
        _gaps_from_topics(build, [(topic, failing) for topic, failing in topics if failing], searched)
        build.status = TopicBuild.Status.DONE
        build.questions = len(rows)
        build.threshold = clustering.DISTANCE_THRESHOLD
        build.model_name = space.model_name if space is not None else ""
        build.seconds = round(time.perf_counter() - started, 3)
        build.finished_at = timezone.now()
        build.save()
    return build


KEEP_BUILDS = 12  # finished builds kept per assistant (each its own period), the earliest periods dropped first


def _builds_replaced(build: TopicBuild) -> None:
    """Builds are kept per period, so the Top questions and Content gaps pages can show an earlier
    period's topics: a new build replaces the earlier ones whose period it mostly covers (more than half
    of their days: yesterday's nightly 30 days by today's) and the failed ones; beyond KEEP_BUILDS the
    builds of the earliest periods go (the new one and the current nightly one stay; their topics go with them, gaps keep their own figures)."""
    earlier = TopicBuild.objects.filter(assistant_id=build.assistant_id).exclude(pk=build.pk)
    earlier.filter(status=TopicBuild.Status.FAILED).delete()
    replaced = []
    for pk, start, end in earlier.filter(status=TopicBuild.Status.DONE).values_list("pk", "start", "end"):
        shared = (min(end, build.end) - max(start, build.start)).days + 1
        if shared * 2 > (end - start).days + 1:
            replaced.append(pk)
    TopicBuild.objects.filter(pk__in=replaced).delete()
    kept = (
        earlier.filter(status=TopicBuild.Status.DONE)
        .order_by("-end", "-finished_at", "-id")
        .values_list("pk", flat=True)
    )
    TopicBuild.objects.filter(pk__in=list(kept[KEEP_BUILDS - 1 :])).delete()


def current_build(assistant_id: int, **filters) -> TopicBuild | None:
    """The assistant's build that new questions join and failures count in: of the finished ones, the
    one whose period ends last (a build asked for an earlier period is kept beside it, not joined)."""
    return (
        TopicBuild.objects.filter(assistant_id=assistant_id, status=TopicBuild.Status.DONE, **filters)
        .order_by("-end", "-finished_at", "-id")
        .first()
    )


def _gap_kind(assistant: Assistant, question: str) -> dict:
    """Search the content for the topic's central question: a gap of kind "no page covers it" when the
    evidence is weak, else "a page covers it but the answer failed", with the best page, its rank and
    its similarity; and the closest passages for the proposed fix."""
    from assistants.answering.retrieval import retrieve_with_evidence

    retrieval = retrieve_with_evidence(assistant, question)
    hits = retrieval.hits
    passages = [{"title": h.title, "url": h.link, "text": h.text[:500]} for h in hits[:3]]
    if retrieval.evidence.weak or not hits:
        return {
            "kind": ContentGap.Kind.NO_PAGE,
            "passages": passages,
            "best_score": retrieval.evidence.similarity or None,
        }
    best = hits[0]
    return {
        "kind": ContentGap.Kind.ANSWER_FAILED,
        "best_title": best.title[:500],
        "best_url": best.url[:2000],
        "best_rank": 1,
        "best_score": round(retrieval.evidence.similarity, 4),
        "passages": passages,
    }


def _outline_written(assistant: Assistant, questions: list[str], passages: list[dict]) -> str:
    """The outline of the page that would answer ``questions``, written by the assistant's model; "" when
    no model is configured or the call fails (the draft of questions and passages stands)."""
    from asgiref.sync import async_to_sync

    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    provider = provider_from_settings(assistant, max_retries=0, max_tokens=OUTLINE_MAX_TOKENS, temperature=0.2)
    if provider is None:
        return ""
    context = "\n\n".join(f"[{p['title']}]\n{p['text']}" for p in passages) or "(nothing close was found)"
    messages = [
        {
            "role": "system",
            "content": "You help a team write the help page their website is missing. Visitors asked the questions"
            " below and the assistant could not answer them from the site. Write a short outline of the page that"
            " would answer them: a title, then sections as a Markdown list, each with the facts it must state."
            " Where a fact is unknown, write [to fill in]; never invent one.",
        },
        {
            "role": "user",
            "content": "Questions:\n"
            + "\n".join(f"- {q}" for q in questions[:12])
            + f"\n\nClosest passages:\n{context}",
        },
    ]

    async def ask() -> str:
        parts: list[str] = []
        stream = provider.stream(messages)
        try:
            async for item in stream:
                if not isinstance(item, Usage):
                    parts.append(item)
        finally:
            await stream.aclose()
        return "".join(parts)

    try:
        return async_to_sync(ask)().strip()[:4000]
    except Exception as exc:  # the model's outage must not cost the build its gaps
        kind = exc.kind if isinstance(exc, ProviderError) else type(exc).__name__
        logger.info("outline not written (%s: %s); the draft stands", kind, exc)
        return ""


def _proposal(label: str, questions: list[str], passages: list[dict], kind: str, written: str = "") -> dict:
    """The fix: an outline of the missing page (written by the model when there is one, else the
    questions and the closest passages laid out as a draft), and the Q&A pair to add."""
    return {
        "outline": {
            "written": written,
            "title": label,
            "questions": questions[:8],
            "passages": passages,
            "note": (
                "No page covers this: write one answering these questions."
                if kind == ContentGap.Kind.NO_PAGE
                else "The best page did not answer: add the missing facts to it, or a Q&A pair."
            ),
        },
        "qa": {"question": label[:500], "answer": ""},
    }


def _gaps_from_topics(build: TopicBuild, failing_topics: list, searched: int) -> None:
    """Turn the build's failing topics into gaps. A gap already open or being re-checked that shares a
    question with a new one is updated (it keeps its re-check); open gaps not found again are removed."""
    kept: set[int] = set()
    existing = dict(
        GapQuestion.objects.filter(
            gap__assistant_id=build.assistant_id,
            gap__status__in=[ContentGap.Status.OPEN, ContentGap.Status.CHECKING],
            message_id__isnull=False,
        ).values_list("message_id", "gap_id")
    )
    # A closed gap holding one of a topic's questions opens again only on failures after it closed: the
    # failures from before the fix (still failed in their first answers) are not counted again.
    closed = {}
    for message_id, closed_at in GapQuestion.objects.filter(
        gap__assistant_id=build.assistant_id, gap__status=ContentGap.Status.CLOSED, message_id__isnull=False
    ).values_list("message_id", "gap__closed_at"):
        if closed_at is not None and (message_id not in closed or closed_at > closed[message_id]):
            closed[message_id] = closed_at
    if closed:
        after = []
        for topic, failing in failing_topics:
            last = max((closed[pk] for pk in topic.message_ids if pk in closed), default=None)
            if last is not None:
                failing = [row for row in failing if row[3] >= last]
            if failing:
                after.append((topic, failing))
        failing_topics = after
    ranked = sorted(failing_topics, key=lambda item: -len({row[2] for row in item[1]}))
    for index, (topic, failing) in enumerate(ranked):
        visitors = len({row[2] for row in failing})
        texts = list(dict.fromkeys(" ".join(row[1].split()) for row in failing))
        found = _gap_kind(build.assistant, topic.label) if index < searched else _recorded_kind(failing)
        passages = found.pop("passages", [])
        written = _outline_written(build.assistant, texts, passages) if index < GAP_WRITTEN else ""
        fields = {
            "topic": topic,
            "label": topic.label,
            "terms": topic.terms,
            "visitors": visitors,
            "questions": len(failing),
            "unanswered": sum(1 for row in failing if row[5]),
            "rated_down": sum(1 for row in failing if row[6] == -1),
            "best_title": "",
            "best_url": "",
            "best_rank": None,
            "best_score": None,
            **found,
            "proposal": _proposal(topic.label, texts, passages, found["kind"], written),
        }
        gap_id = next((existing[row[0]] for row in failing if row[0] in existing), None)
        if gap_id is not None:
            ContentGap.objects.filter(pk=gap_id).update(**fields)
            gap = ContentGap.objects.get(pk=gap_id)
        else:
            gap = ContentGap.objects.create(assistant_id=build.assistant_id, **fields)
        kept.add(gap.pk)
        _gap_questions_add(gap, failing)
    # Open gaps not found again are removed, those of the build's period only (a build of an earlier
    # period leaves the gaps of questions asked outside it).
    low, high = _bounds(build.start, build.end)
    ContentGap.objects.filter(assistant_id=build.assistant_id, status=ContentGap.Status.OPEN).exclude(
        pk__in=kept
    ).exclude(
        Exists(
            GapQuestion.objects.filter(gap=OuterRef("pk")).filter(
                Q(message__created_at__lt=low) | Q(message__created_at__gte=high)
            )
        )
    ).delete()


def gap_recheck_queue(*, gap: ContentGap, wait_for: list[int] | None = None) -> ContentGap:
    """Ask the gap's questions again on a worker (after ``wait_for`` documents are indexed)."""
    from assistants.analytics.tasks import gap_recheck_task

    gap.status, gap.queued_at = ContentGap.Status.CHECKING, timezone.now()
    ContentGap.objects.filter(pk=gap.pk).update(status=gap.status, queued_at=gap.queued_at)
    transaction.on_commit(lambda: gap_recheck_task.delay(gap.pk, wait_for or []))
    return gap


def gaps_recheck_lost() -> int:
    """Queue again the re-checks that showed no result for RECONCILE_AFTER seconds (their task was lost
    with a worker or the broker's queue); beat runs it with the rollups."""
    from django.conf import settings

    lost = ContentGap.objects.filter(
        status=ContentGap.Status.CHECKING,
        queued_at__lt=timezone.now() - dt.timedelta(seconds=settings.RECONCILE_AFTER),
    )
    count = 0
    for gap in lost:
        gap_recheck_queue(gap=gap)
        count += 1
    return count


def gaps_recheck_for_assistant(*, assistant_id: int) -> int:
    """New content was indexed for the assistant: re-check its gaps that are not closed."""
    count = 0
    for gap in ContentGap.objects.filter(assistant_id=assistant_id).exclude(status=ContentGap.Status.CLOSED):
        gap_recheck_queue(gap=gap)
        count += 1
    return count


def gap_qa_add(*, gap: ContentGap, question: str, answer: str) -> ContentGap:
    """Add the Q&A pair the gap proposes (the library's own service) and re-check the gap once it is indexed."""
    from ingestion import services as ingestion_services

    document = ingestion_services.qa_add(assistant=gap.assistant, question=question, answer=answer)
    return gap_recheck_queue(gap=gap, wait_for=[document.pk])


def gap_recheck_record(*, gap_id: int, results: dict[int, dict]) -> ContentGap | None:
    """Store what asking each question again gave (``{check id: {"answered", "title", "url"}}``); the gap
    closes when every question is answered, else opens again."""
    gap = ContentGap.objects.filter(pk=gap_id).first()
    if gap is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        for check_id, result in results.items():
            GapQuestion.objects.filter(pk=check_id, gap=gap).update(
                answered=result["answered"],
                source_title=result.get("title", "")[:500],
                source_url=result.get("url", "")[:2000],
                checked_at=now,
            )
        closed = not gap.checks.exclude(answered=True).exists() and gap.checks.exists()
        gap.status = ContentGap.Status.CLOSED if closed else ContentGap.Status.OPEN
        gap.checked_at = now
        gap.closed_at = now if closed else None
        gap.save(update_fields=["status", "checked_at", "closed_at"])
    return gap


def _gap_questions_add(gap: ContentGap, failing) -> None:
    """The failing questions (``(message_id, text)`` rows) the gap does not hold yet, each text once, up to
    ``GAP_QUESTIONS`` in all: the questions its re-check asks again."""
    known = set(gap.checks.values_list("message_id", flat=True))
    seen_texts = set(gap.checks.values_list("text", flat=True))
    new = []
    for row in failing:
        text = " ".join(row[1].split())
        if row[0] in known or text in seen_texts or len(known) + len(new) >= GAP_QUESTIONS:
            continue
        seen_texts.add(text)
        new.append(GapQuestion(gap=gap, message_id=row[0], text=text[:2000]))
    GapQuestion.objects.bulk_create(new)
