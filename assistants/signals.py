"""Reactions to what the content layer reports: an assistant's content indexed anew is calibrated
again (its answering gate, ``assistants.golden.services.assistant_calibrate``), on a worker."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from assistants.models import Message
from ingestion.signals import content_indexed


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
        transaction.on_commit(lambda: question_embed_task.delay(message_id))
