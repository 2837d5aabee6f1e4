"""Reactions to what the content layer reports: an assistant's content indexed anew is calibrated
again (its answering gate, ``assistants.golden.services.assistant_calibrate``) and its open content
gaps are re-checked, on a worker; every visitor question stored is queued to be embedded once
(analytics topics), every answer stored or rated to be counted in its question's topic; and a deleted assistant's days leave its team's daily rollups."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Max, Min
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from assistants.models import Assistant, Feedback, Message
from ingestion.signals import content_indexed

logger = logging.getLogger(__name__)


@receiver(content_indexed, dispatch_uid="assistants.calibrate_on_content_indexed")
def calibrate_on_content_indexed(sender, assistant_id: int | None = None, **kwargs) -> None:
    from assistants.tasks import assistant_calibrate_task

    if assistant_id is not None:
        transaction.on_commit(lambda: assistant_calibrate_task.delay(assistant_id))


@receiver(content_indexed, dispatch_uid="assistants.analytics.recheck_gaps_on_content_indexed")
def recheck_gaps_on_content_indexed(sender, assistant_id: int | None = None, **kwargs) -> None:
    """New content (a crawl, an upload) may close the assistant's content gaps: ask their questions again."""
    from assistants.analytics import services as analytics_services

    if assistant_id is not None:
        analytics_services.gaps_recheck_for_assistant(assistant_id=assistant_id)


@receiver(post_save, sender=Message, dispatch_uid="assistants.analytics.embed_question")
def embed_question_on_store(sender, instance: Message, created: bool = False, **kwargs) -> None:
    """Every visitor question is embedded once, on a worker after the commit (no model in the request)."""
    from assistants.analytics.tasks import question_embed_task

    if created and instance.role == Message.Role.USER:
        message_id = instance.pk
        transaction.on_commit(lambda: _queue_quietly(question_embed_task, message_id))


@receiver(post_save, sender=Message, dispatch_uid="assistants.analytics.topic_failures_on_answer")
def topic_failures_on_answer(sender, instance: Message, created: bool = False, **kwargs) -> None:
    """An answer stored: if its question is in a topic of the latest build (clustered or joined since),
    the topic and its gap count its failures now, on a worker, not at the next rebuild."""
    from assistants.analytics.tasks import topic_failures_refresh_task

    if created and instance.role == Message.Role.ASSISTANT:
        message_id = instance.pk
        transaction.on_commit(lambda: _queue_quietly(topic_failures_refresh_task, message_id))


@receiver(post_save, sender=Feedback, dispatch_uid="assistants.analytics.topic_failures_on_rating")
def topic_failures_on_rating(sender, instance: Feedback, **kwargs) -> None:
    """A rating given or changed: the rated answer's topic counts it now (as above)."""
    from assistants.analytics.tasks import topic_failures_refresh_task

    if instance.kind == Feedback.Kind.RATING and instance.message_id:
        message_id = instance.message_id
        transaction.on_commit(lambda: _queue_quietly(topic_failures_refresh_task, message_id))


@receiver(post_delete, sender=Assistant, dispatch_uid="assistants.analytics.team_rollups_on_assistant_delete")
def team_rollups_on_assistant_delete(sender, instance: Assistant, **kwargs) -> None:
    """A deleted assistant's days leave its team's rollups: they are summed again once it is gone."""
    team_id = instance.team_id
    transaction.on_commit(lambda: _team_rollups_again(team_id))


def _team_rollups_again(team_id: int) -> None:
    from assistants.analytics import services as analytics_services
    from assistants.models import TeamDailyRollup

    span = TeamDailyRollup.objects.filter(team_id=team_id).aggregate(first=Min("day"), last=Max("day"))
    if span["first"]:  # none when the team went too
        analytics_services.team_rollups_compute(team_ids=[team_id], start=span["first"], end=span["last"])


def _queue_quietly(task, *args) -> None:
    """Queue a task that can be missed: a broker outage must not cost a visitor the answer (the topic
    build embeds the questions still without a vector)."""
    try:
        task.apply_async(args, retry=False)  # no publish retries: the visitor is waiting
    except Exception:
        logger.warning("could not queue %s%r; the topic build will do it", task.name, args, exc_info=True)
