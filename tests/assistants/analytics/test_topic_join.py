"""Between nightly rebuilds a new question joins the nearest topic of the latest build when it is close
enough (the clustering's own threshold), else waits for the next rebuild; counted once."""

import pytest

from assistants.analytics import services
from assistants.analytics.tasks import question_embed_task
from assistants.models import ContentGap, Topic, TopicBuild
from tests.assistants.analytics.seed import DAY1, DAY2, answer, ask, at, conversation, rate
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db

ASKED = [
    "How much does the pro plan cost?",
    "What is the price of the pro plan?",
    "How do I reset my password?",
    "I forgot my password, how do I change it?",
]


def built(assistant):
    for hour, text in enumerate(ASKED):
        c = conversation(assistant, at(DAY1, 9 + hour))
        ask(c, at(DAY1, 9 + hour, 1), text)
        answer(c, at(DAY1, 9 + hour, 2))
    build = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk)
    build.refresh_from_db()
    assert build.status == TopicBuild.Status.DONE and build.model_name
    return build


def new_question(assistant, text, visitor_of=None, hour=10):
    c = visitor_of or conversation(assistant, at(DAY2, hour))
    return ask(c, at(DAY2, hour, 5), text)


def test_a_close_question_joins_the_nearest_topic_once(embedder):
    assistant = make_assistant()
    build = built(assistant)
    price = Topic.objects.get(build=build, label__icontains="pro plan")
    before = Topic.objects.values_list("pk", "questions", "visitors", "first_half", "second_half")
    question = new_question(assistant, "How expensive is the pro plan?")
    question_embed_task(question.pk)  # embeds, then joins
    price.refresh_from_db()
    assert question.pk in price.message_ids and price.joined == 1
    assert price.questions == 3 and price.visitors == 3 and price.second_half == 1
    # Again (a task run twice): nothing changes.
    assert services.topic_join(message_id=question.pk) is None
    question_embed_task(question.pk)
    again = Topic.objects.get(pk=price.pk)
    assert (again.questions, again.joined, again.message_ids.count(question.pk)) == (3, 1, 1)
    # The other topics are untouched.
    assert [row for row in before if row[0] != price.pk] == [
        row
        for row in Topic.objects.values_list("pk", "questions", "visitors", "first_half", "second_half")
        if row[0] != price.pk
    ]


def test_the_same_visitor_asking_again_is_not_a_new_visitor(embedder):
    assistant = make_assistant()
    build = built(assistant)
    c = conversation(assistant, at(DAY2, 11))
    first = new_question(assistant, "How do I reset my password please?", visitor_of=c, hour=11)
    second = new_question(assistant, "Password reset, how?", visitor_of=c, hour=12)
    for message in (first, second):
        services.question_embed(message_id=message.pk)
        services.topic_join(message_id=message.pk)
    topic = Topic.objects.get(build=build, message_ids__contains=[first.pk])
    assert second.pk in topic.message_ids
    assert (topic.questions, topic.visitors, topic.joined) == (4, 3, 2)


def test_a_question_near_no_topic_waits_for_the_rebuild(embedder):
    assistant = make_assistant()
    build = built(assistant)
    question = new_question(assistant, "Can I bring my dog to the office on Fridays?")
    services.question_embed(message_id=question.pk)
    assert services.topic_join(message_id=question.pk) is None
    assert sum(Topic.objects.filter(build=build).values_list("joined", flat=True)) == 0
    # The rebuild picks it up as a topic of its own.
    again = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=again.pk)
    assert Topic.objects.filter(build=again, message_ids__contains=[question.pk], questions=1).exists()


def test_nothing_to_join_without_a_build_or_in_another_model(embedder):
    assistant = make_assistant()
    question = new_question(assistant, "How much does the pro plan cost?")
    services.question_embed(message_id=question.pk)
    assert services.topic_join(message_id=question.pk) is None  # no build yet
    build = built(assistant)
    TopicBuild.objects.filter(pk=build.pk).update(model_name="another-model")
    late = new_question(assistant, "What is the price of the pro plan, roughly?", hour=13)
    services.question_embed(message_id=late.pk)
    assert services.topic_join(message_id=late.pk) is None


def gap_figures(topic):
    return [
        (g.status, g.visitors, g.questions, g.unanswered, g.rated_down, sorted(g.checks.values_list("text", flat=True)))
        for g in ContentGap.objects.filter(topic=topic).order_by("pk")
    ]


def test_a_joined_questions_failed_answer_and_rating_count_in_its_topic_and_gap_at_once(
    embedder, eager_tasks, django_capture_on_commit_callbacks
):
    assistant = make_assistant()
    build = built(assistant)
    price = Topic.objects.get(build=build, label__icontains="pro plan")
    assert (price.unanswered, price.rated_down, gap_figures(price)) == (0, 0, [])
    c = conversation(assistant, at(DAY2, 10))
    question = new_question(assistant, "How expensive is the pro plan?", visitor_of=c)
    question_embed_task(question.pk)  # joins; no answer yet: nothing fails
    price.refresh_from_db()
    assert (price.questions, price.unanswered, gap_figures(price)) == (3, 0, [])
    # Its answer comes (the chat stores it): "I don't know" counts now, and opens the topic's gap.
    with django_capture_on_commit_callbacks(execute=True):
        reply = answer(c, at(DAY2, 10, 6), text="I don't know.", unanswered=True)
    price.refresh_from_db()
    assert (price.unanswered, price.rated_down) == (1, 0)
    gap = ContentGap.objects.get(topic=price)
    assert gap.kind == ContentGap.Kind.NO_PAGE and gap.label == price.label
    assert gap_figures(price) == [("open", 1, 1, 1, 0, ["How expensive is the pro plan?"])]
    # The visitor rates it down: counted once more, in the same gap.
    with django_capture_on_commit_callbacks(execute=True):
        rate(reply, -1)
    price.refresh_from_db()
    assert (price.unanswered, price.rated_down) == (1, 1)
    assert gap_figures(price) == [("open", 1, 1, 1, 1, ["How expensive is the pro plan?"])]
    # Again (tasks run twice, or for the question itself): nothing changes.
    before = (
        Topic.objects.values_list("pk", "questions", "unanswered", "rated_down").order_by("pk"),
        gap_figures(price),
    )
    for message_id in (reply.pk, question.pk, reply.pk):
        services.topic_failures_refresh(message_id=message_id)
    after = (
        Topic.objects.values_list("pk", "questions", "unanswered", "rated_down").order_by("pk"),
        gap_figures(price),
    )
    assert list(before[0]) == list(after[0]) and before[1] == after[1]
    # The rebuild finds the same figures and keeps the gap.
    again = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=again.pk)
    rebuilt = Topic.objects.get(build=again, message_ids__contains=[question.pk])
    assert (rebuilt.unanswered, rebuilt.rated_down) == (1, 1)
    assert ContentGap.objects.get(assistant=assistant).pk == gap.pk
    assert gap_figures(rebuilt) == [("open", 1, 1, 1, 1, ["How expensive is the pro plan?"])]


def test_after_a_gap_closed_only_new_failures_open_one(embedder):
    assistant = make_assistant()
    build = built(assistant)
    price = Topic.objects.get(build=build, label__icontains="pro plan")
    c = conversation(assistant, at(DAY2, 10))
    first = new_question(assistant, "How expensive is the pro plan?", visitor_of=c)
    answer(c, at(DAY2, 10, 6), text="I don't know.", unanswered=True)
    services.question_embed(message_id=first.pk)
    assert services.topic_join(message_id=first.pk) == price  # answered already: counted as it joins
    gap = ContentGap.objects.get(topic=price)
    ContentGap.objects.filter(pk=gap.pk).update(status=ContentGap.Status.CLOSED, closed_at=at(DAY2, 12))
    # A new question answered well: the old failure does not open the gap again.
    c = conversation(assistant, at(DAY2, 13))
    fine = new_question(assistant, "Pro plan price per month?", visitor_of=c, hour=13)
    answer(c, at(DAY2, 13, 6))
    services.question_embed(message_id=fine.pk)
    services.topic_join(message_id=fine.pk)
    price.refresh_from_db()
    assert (price.questions, price.unanswered) == (4, 1)
    assert [g[0] for g in gap_figures(price)] == ["closed"]
    # A new failure after the close opens a gap of its own, with it alone.
    c = conversation(assistant, at(DAY2, 14))
    failed = new_question(assistant, "What does the pro plan cost a year?", visitor_of=c, hour=14)
    answer(c, at(DAY2, 14, 6), text="I don't know.", unanswered=True)
    services.question_embed(message_id=failed.pk)
    services.topic_join(message_id=failed.pk)
    assert gap_figures(price)[1] == ("open", 1, 1, 1, 0, ["What does the pro plan cost a year?"])


def test_a_gaps_question_asked_again_joins_no_topic(embedder):
    """The re-check's conversations count nowhere: their questions are neither embedded nor joined."""
    from assistants.analytics.metrics import RECHECK_VISITOR_PREFIX
    from assistants.models import Conversation, QuestionEmbedding

    assistant = make_assistant()
    build = built(assistant)
    before = list(Topic.objects.filter(build=build).values_list("pk", "questions", "message_ids").order_by("pk"))
    recheck = Conversation.objects.create(assistant=assistant, visitor_token=f"{RECHECK_VISITOR_PREFIX}0123abcd")
    question = ask(recheck, at(DAY2, 10), "How expensive is the pro plan?")
    question_embed_task(question.pk)
    assert not QuestionEmbedding.objects.filter(message=question).exists()
    assert (
        list(Topic.objects.filter(build=build).values_list("pk", "questions", "message_ids").order_by("pk")) == before
    )


def test_a_rebuild_after_a_gap_closed_does_not_reopen_it_from_the_failures_before_the_fix(embedder):
    """Issue 22: the failures from before the fix stay failed in their first answers; a rebuild counts
    only those after the gap closed, so it opens no gap for them, and one for a new failure alone."""
    assistant = make_assistant()
    c = conversation(assistant, at(DAY1, 9))
    old = ask(c, at(DAY1, 9, 1), "How much does the pro plan cost?")
    answer(c, at(DAY1, 9, 2), text="I don't know.", unanswered=True)
    for hour, text in enumerate(ASKED[1:], start=10):
        c = conversation(assistant, at(DAY1, hour))
        ask(c, at(DAY1, hour, 1), text)
        answer(c, at(DAY1, hour, 2))
    build = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=build.pk)
    gap = ContentGap.objects.get(assistant=assistant)
    assert gap.status == ContentGap.Status.OPEN and list(gap.checks.values_list("message_id", flat=True)) == [old.pk]
    # The team added the page; the re-check answered the question: the gap closed.
    services.gap_recheck_record(gap_id=gap.pk, results={check.pk: {"answered": True} for check in gap.checks.all()})
    gap.refresh_from_db()
    assert gap.status == ContentGap.Status.CLOSED
    ContentGap.objects.filter(pk=gap.pk).update(closed_at=at(DAY2, 8))
    # The nightly rebuild: the old failure is still there, but from before the close.
    again = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=again.pk)
    assert list(ContentGap.objects.filter(assistant=assistant).values_list("pk", "status")) == [
        (gap.pk, ContentGap.Status.CLOSED)
    ]
    # A failure after the close: the rebuild opens a gap with it alone.
    c = conversation(assistant, at(DAY2, 10))
    new = ask(c, at(DAY2, 10, 1), "What is the price of the pro plan per month?")
    answer(c, at(DAY2, 10, 2), text="I don't know.", unanswered=True)
    third = services.topics_build_queue(assistant=assistant, start=DAY1, end=DAY2)
    services.topics_build(build_id=third.pk)
    opened = ContentGap.objects.get(assistant=assistant, status=ContentGap.Status.OPEN)
    assert (opened.questions, opened.unanswered) == (1, 1)
    assert list(opened.checks.values_list("message_id", flat=True)) == [new.pk]
