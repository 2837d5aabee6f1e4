"""Visitor questions are embedded once, on a worker after the commit; content indexed re-checks gaps."""

import pytest

from assistants.analytics import services
from assistants.analytics.tasks import question_embed_task
from assistants.models import ContentGap, Conversation, Message, QuestionEmbedding
from ingestion.signals import content_indexed
from ingestion.spaces import space_active
from tests.factories import make_assistant

pytestmark = pytest.mark.django_db


def test_a_question_is_queued_once_after_its_commit_and_embedded_once(django_capture_on_commit_callbacks, embedder):
    assistant = make_assistant()
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 24)
    with django_capture_on_commit_callbacks() as callbacks:
        question = Message.objects.create(conversation=conversation, role="user", text="How do I reset my password?")
        Message.objects.create(conversation=conversation, role="assistant", text="Like this.")
        question.save()  # saved again: not queued again
    # Nothing is embedded in the request: the question is queued once to be embedded, the answer once
    # to be counted in its question's topic.
    queued = sorted(callback.__qualname__.split(".")[0] for callback in callbacks)
    assert queued == ["embed_question_on_store", "topic_failures_on_answer"]
    assert not QuestionEmbedding.objects.exists()
    assert services.question_embed(message_id=question.pk) is True
    assert services.question_embed(message_id=question.pk) is False  # once
    stored = QuestionEmbedding.objects.get()
    assert stored.model_name == space_active(assistant.pk).model_name
    assert stored.vector == pytest.approx(list(embedder.embed_queries([question.text])[0]), abs=1e-6)
    assert question_embed_task.name == "assistants.analytics.tasks.question_embed_task"


def test_answers_are_not_embedded():
    assistant = make_assistant()
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 24)
    answer = Message.objects.create(conversation=conversation, role="assistant", text="Hello")
    assert services.question_embed(message_id=answer.pk) is False


def test_new_content_re_checks_the_gaps_that_are_not_closed(django_capture_on_commit_callbacks):
    assistant = make_assistant()
    open_gap = ContentGap.objects.create(assistant=assistant, label="A?", kind=ContentGap.Kind.NO_PAGE)
    closed = ContentGap.objects.create(
        assistant=assistant, label="B?", kind=ContentGap.Kind.NO_PAGE, status=ContentGap.Status.CLOSED
    )
    with django_capture_on_commit_callbacks() as callbacks:
        content_indexed.send(sender=None, assistant_id=assistant.pk)
    open_gap.refresh_from_db()
    closed.refresh_from_db()
    assert open_gap.status == ContentGap.Status.CHECKING and closed.status == ContentGap.Status.CLOSED
    assert len(callbacks) == 2  # the calibration and the one re-check


def test_a_lost_re_check_is_queued_again(django_capture_on_commit_callbacks, settings):
    import datetime as dt

    from django.utils import timezone

    assistant = make_assistant()
    gap = ContentGap.objects.create(assistant=assistant, label="A?", kind=ContentGap.Kind.NO_PAGE)
    services.gap_recheck_queue(gap=gap)
    assert services.gaps_recheck_lost() == 0  # just queued
    ContentGap.objects.filter(pk=gap.pk).update(
        queued_at=timezone.now() - dt.timedelta(seconds=settings.RECONCILE_AFTER + 1)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.gaps_recheck_lost() == 1
    assert len(callbacks) == 1
    gap.refresh_from_db()
    assert gap.queued_at > timezone.now() - dt.timedelta(seconds=5)
